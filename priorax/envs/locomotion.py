"""dm_control.locomotion's CMU humanoid as the `loco:` family.

- `loco:cmu_humanoid-<task>`: dm_control's examples that need no download
  (`dm_control.locomotion.examples.basic_cmu_2019`: go_to_target, run_walls, run_gaps,
  maze_forage, heterogeneous_forage), position-controlled CMU humanoid, 30 ms control step.
- `loco:cmu_humanoid-track_<clip>`: track one clip of dm_control's CMU motion-capture file
  (`MultiClipMocapTracking`, the "comic" reward of Hasenclever et al. 2020 and MoCapAct,
  reference observations 1..5 steps ahead). These exist only when the file is present: the
  2020 release `cmu_2020_*.h5` (the CMU humanoid V2020) or, failing that, `cmu_2019_*.h5` (the
  2019 humanoid), looked for in `mocap_dir()` ($PRIORAX_MOCAP_DIR, default ~/.dm_control, where
  dm_control's own downloader puts it). Nothing is ever downloaded; without the file a tracking
  name fails with a message saying where the file was looked for.

Every CMU humanoid task observes the walker's proprioception under `PROPRIOCEPTION_KEYS`; tasks add
their own keys (`walker/target`, the tracking task's `walker/reference_*`, cameras).
"""

import functools
import glob
import os
from typing import Dict, Optional, Tuple

import dm_env
from dm_control import composer
from dm_control.locomotion.arenas import floors
from dm_control.locomotion.examples import basic_cmu_2019
from dm_control.locomotion.tasks.reference_pose import tracking
from dm_control.locomotion.tasks.reference_pose import types
from dm_control.locomotion.walkers import cmu_humanoid

from priorax.envs import registry

PREFIX = "loco"
BODY = "cmu_humanoid"
TRACK = "track_"
MOCAP_DIR_VARIABLE = "PRIORAX_MOCAP_DIR"
DEFAULT_MOCAP_DIR = "~/.dm_control"
# The walker's proprioception, common to every task of this family (sorted).
PROPRIOCEPTION_KEYS = (
    "walker/actuator_activation", "walker/appendages_pos", "walker/body_height",
    "walker/end_effectors_pos", "walker/joints_pos", "walker/joints_vel",
    "walker/sensors_accelerometer", "walker/sensors_force", "walker/sensors_gyro",
    "walker/sensors_torque", "walker/sensors_touch", "walker/sensors_velocimeter",
    "walker/world_zaxis")
_EXAMPLES = ("go_to_target", "run_walls", "run_gaps", "maze_forage", "heterogeneous_forage")
# The release each file name stands for, preferred first, and the walker fitted to it.
_MOCAP_RELEASES = (("cmu_2020_*.h5", cmu_humanoid.CMUHumanoidPositionControlledV2020),
                   ("cmu_2019_*.h5", cmu_humanoid.CMUHumanoidPositionControlled))
# Tracking as in MoCapAct (Wagener et al. 2022, https://arxiv.org/abs/2208.07363).
_REFERENCE_STEPS = (1, 2, 3, 4, 5)
_TRACKING_MIN_STEPS = 10


def mocap_dir() -> str:
  """Where the CMU mocap file is looked for: $PRIORAX_MOCAP_DIR, else ~/.dm_control."""
  return os.path.expanduser(os.environ.get(MOCAP_DIR_VARIABLE, DEFAULT_MOCAP_DIR))


def find_mocap_file(directory: Optional[str] = None) -> Optional[Tuple[str, type]]:
  """(path, walker class) of the newest CMU mocap release in `directory`, or None."""
  directory = mocap_dir() if directory is None else directory
  for pattern, walker in _MOCAP_RELEASES:
    paths = sorted(glob.glob(os.path.join(directory, pattern)))
    if paths:
      return paths[0], walker
  return None


def missing_mocap_message(directory: Optional[str] = None) -> str:
  directory = mocap_dir() if directory is None else directory
  return (f"mocap tracking needs dm_control's CMU mocap file (cmu_2020_*.h5, or cmu_2019_*.h5) in "
          f"{directory}; none is there (set ${MOCAP_DIR_VARIABLE} or --mocap-dir to the directory "
          f"holding it; priorax never downloads it)")


@functools.lru_cache(maxsize=4)
def _clip_lengths(path: str) -> Dict[str, int]:
  """Clip id -> its number of mocap steps, read from the file's attributes."""
  import h5py  # pylint: disable=g-import-not-at-top
  with h5py.File(path, "r") as f:
    return {clip: int(f[clip].attrs["num_steps"]) for clip in sorted(f.keys())}


def _clips(path: str) -> Tuple[str, ...]:
  return tuple(_clip_lengths(path))


def tracking_clips() -> Tuple[str, ...]:
  """The clip ids of the mocap file found in `mocap_dir()` (none without the file)."""
  found = find_mocap_file()
  return () if found is None else _clips(found[0])


def list_names() -> list[str]:
  """The examples, then one tracking task per clip of the mocap file (if present)."""
  return ([f"{PREFIX}:{BODY}-{task}" for task in _EXAMPLES] +
          [f"{PREFIX}:{BODY}-{TRACK}{clip}" for clip in tracking_clips()])


def _load_tracking(name: str, clip: str, seed: int) -> dm_env.Environment:
  found = find_mocap_file()
  if found is None:
    raise registry.UnknownEnvironmentError(f"{name!r}: {missing_mocap_message()}")
  path, walker = found
  if clip not in _clips(path):
    raise registry.unknown_environment_error(f"Unknown clip {clip!r} of {path}", name,
                                             list_names())
  # A clip too short for MoCapAct's minimum episode still leaves one step after the references.
  min_steps = min(_TRACKING_MIN_STEPS,
                  max(1, _clip_lengths(path)[clip] - max(_REFERENCE_STEPS) - 1))
  task = tracking.MultiClipMocapTracking(
      walker=walker, arena=floors.Floor(), ref_path=path, ref_steps=_REFERENCE_STEPS,
      dataset=types.ClipCollection(ids=(clip,)), min_steps=min_steps,
      reward_type="comic")
  return composer.Environment(task=task, random_state=seed, strip_singleton_obs_buffer_dim=True)


def load(name: str, seed: int) -> dm_env.Environment:
  """Builds `loco:cmu_humanoid-<task>` seeded with `seed`."""
  rest = name.removeprefix(f"{PREFIX}:")
  body, separator, task = rest.partition("-")
  if rest == name or not separator or body != BODY:
    raise registry.unknown_environment_error(f"Expected '{PREFIX}:{BODY}-<task>'", name,
                                             list_names())
  if task.startswith(TRACK):
    return _load_tracking(name, task.removeprefix(TRACK), seed)
  if task not in _EXAMPLES:
    raise registry.unknown_environment_error(f"Unknown task {task!r} of {BODY!r}", name,
                                             list_names())
  return getattr(basic_cmu_2019, f"cmu_humanoid_{task}")(random_state=seed)
