"""Videos: synthetic frames to MP4, a real dm_control policy video, and the no-GL error message."""

import os
import subprocess
import sys

import imageio
import numpy as np
import pytest

from priorax import envs
from priorax.utils import video

_PACKAGES = ("libegl-mesa0 libgl1-mesa-dri", "libosmesa6")


def _count_frames(path: str) -> int:
  with imageio.get_reader(path, format="FFMPEG") as reader:
    return reader.count_frames()


def test_frames_to_mp4_writes_every_frame(tmp_path):
  frames = (np.full((48, 64, 3), 20 * i, np.uint8) for i in range(6))
  path = str(tmp_path / "nested" / "synthetic.mp4")
  assert video.frames_to_mp4(frames, path, fps=10) == 6
  assert os.path.getsize(path) > 0
  assert _count_frames(path) == 6


@pytest.mark.parametrize(
    "frames, fps, message",
    [
        ([], 30, "No frames"),
        ([np.zeros((8, 8, 3), np.float32)], 30, r"\[H, W, 3\] uint8"),
        ([np.zeros((8, 8), np.uint8)], 30, r"\[H, W, 3\] uint8"),
        ([np.zeros((8, 8, 3), np.uint8)], 0, "fps must be positive"),
    ],
)
def test_frames_to_mp4_rejects_bad_input(tmp_path, frames, fps, message):
  with pytest.raises(ValueError, match=message):
    video.frames_to_mp4(frames, str(tmp_path / "bad.mp4"), fps=fps)


def test_record_video_of_a_dm_control_policy(tmp_path):
  # A 50-step action repeat cuts cartpole's 1000-step episode to 20 agent steps: 21 frames.
  environment = envs.make_environment("dmc:cartpole-swingup", seed=0, action_repeat=50)
  action = np.zeros(environment.action_spec().shape, np.float32)
  path = str(tmp_path / "policy.mp4")
  try:
    count = video.record_video(environment, lambda observation: action, path, width=64, height=48)
  except video.RenderingUnavailableError as error:
    assert all(packages in str(error) for packages in _PACKAGES)
    pytest.skip(str(error))
  assert count == 21
  assert os.path.getsize(path) > 0
  assert _count_frames(path) == 21


@pytest.mark.parametrize(
    "environment, episodes, message",
    [(object(), 1, "needs a MuJoCo environment"), (None, 0, "episodes must be >= 1")],
)
def test_record_video_rejects_bad_arguments(tmp_path, environment, episodes, message):
  with pytest.raises(ValueError, match=message):
    video.record_video(environment, lambda _: 0, str(tmp_path / "x.mp4"), episodes=episodes)


def test_without_gl_the_error_names_the_packages(tmp_path):
  # A fresh process where dm_control loads no renderer, as on a machine with neither EGL nor OSMesa.
  script = (
      "from priorax import envs\n"
      "from priorax.utils import video\n"
      "environment = envs.make_environment('dmc:cartpole-swingup', seed=0)\n"
      "try:\n"
      f"  video.record_video(environment, lambda observation: 0.0, {str(tmp_path / 'x.mp4')!r})\n"
      "except video.RenderingUnavailableError as error:\n"
      "  print(error)\n"
  )
  result = subprocess.run(
      [sys.executable, "-c", script], env={**os.environ, "MUJOCO_GL": "off"},
      capture_output=True, text=True, timeout=120, check=True,
  )
  message = result.stdout.strip()
  assert "\n" not in message
  assert message.startswith("MuJoCo offscreen rendering is unavailable (MUJOCO_GL=off")
  assert all(packages in message for packages in _PACKAGES)
  assert not (tmp_path / "x.mp4").exists()
