"""MP4 videos of a policy acting in a MuJoCo environment, rendered offscreen (headless).

Frames come from dm_control's `physics.render`, reached through any stack of `EnvironmentWrapper`s
(they forward attributes). Importing `priorax.envs` chooses the GL backend before dm_control loads
(EGL, else OSMesa); where neither can create a context, `record_video` raises
`RenderingUnavailableError` naming the Debian packages to install. Frames are streamed to ffmpeg
(the binary ships in the imageio-ffmpeg wheel), so long episodes are never held in memory.
"""

import itertools
import os
from typing import Callable, Iterable, Iterator

import dm_env
import imageio
import numpy as np

from priorax import types
from priorax.envs import rendering
from priorax.envs.rendering import RenderingUnavailableError  # pylint: disable=unused-import

Policy = Callable[[types.Observation], types.NestedArray]
# H.264 (yuv420p) needs even frame sizes; imageio scales a frame up to a multiple of this.
_MACRO_BLOCK_SIZE = 2


def frames_to_mp4(frames: Iterable[np.ndarray], path: str, fps: float = 30) -> int:
  """Writes RGB frames to an H.264 MP4 at `path`, creating its folder; returns the frame count.

  Args:
    frames: uint8 arrays of shape [height, width, 3], all the same size; may be a generator.
    path: the output file; overwritten if it exists.
    fps: frames per second of the video.

  Raises:
    ValueError: `fps` is not positive, there are no frames, or a frame is not [H, W, 3] uint8.
  """
  if fps <= 0:
    raise ValueError(f"fps must be positive: got {fps!r}.")
  iterator = iter(frames)
  first = next(iterator, None)
  if first is None:
    raise ValueError(f"No frames to write to {path!r}.")
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  count = 0
  with imageio.get_writer(
      path, format="FFMPEG", mode="I", fps=fps, codec="libx264", macro_block_size=_MACRO_BLOCK_SIZE
  ) as writer:
    for frame in itertools.chain([first], iterator):
      if frame.ndim != 3 or frame.shape[-1] != 3 or frame.dtype != np.uint8:
        raise ValueError(f"Frames must be [H, W, 3] uint8: got {frame.shape}, {frame.dtype}.")
      writer.append_data(frame)
      count += 1
  return count


def record_video(
    environment: dm_env.Environment,
    policy: Policy,
    path: str,
    *,
    episodes: int = 1,
    fps: float = 30,
    width: int = 320,
    height: int = 240,
    camera_id: int = 0,
) -> int:
  """Runs `policy` for whole episodes and writes what `camera_id` sees to an MP4 at `path`.

  Args:
    environment: a dm_control environment, possibly wrapped (it must reach a `physics`).
    policy: maps an observation to an action, as the environment's `step` expects it.
    path: the output MP4; its folder is created.
    episodes: how many episodes to record, one after another in the same file.
    fps: frames per second of the video.
    width: frame width in pixels (at most the model's offscreen width, 640 by default).
    height: frame height in pixels (at most the model's offscreen height, 480 by default).
    camera_id: the MuJoCo camera to render from (index or name).

  Returns:
    The number of frames written: one per reset and one per step.

  Raises:
    RenderingUnavailableError: no OpenGL backend can render here; the message names the packages.
    ValueError: `episodes` < 1, or `environment` has no MuJoCo `physics`.
  """
  if episodes < 1:
    raise ValueError(f"episodes must be >= 1: got {episodes!r}.")
  if not hasattr(environment, "physics"):
    raise ValueError(f"record_video needs a MuJoCo environment with `physics`: got {environment}")
  rendering.check_rendering()

  def frames() -> Iterator[np.ndarray]:
    for _ in range(episodes):
      timestep = environment.reset()
      physics = environment.physics
      yield physics.render(height=height, width=width, camera_id=camera_id)
      while not timestep.last():
        timestep = environment.step(policy(timestep.observation))
        yield physics.render(height=height, width=width, camera_id=camera_id)

  return frames_to_mp4(frames(), path, fps)
