"""Episodes on disk: a dataset directory that offline agents learn from.

One compressed `.npz` file per episode of T actions holds x₀ … x_T (each observation key as
`observation_<i>`, the key names in `observation_keys`), a₀ … a_{T−1}, r₀ … r_{T−1},
d₀ … d_{T−1} (the environment's discounts, d = 0 after a terminal step) and whether the episode
ended (`last`; a cut-off episode has no last step). `EpisodeWriter` has the adder interface, so any
actor records a dataset by being given one as its adder; `replay_into` feeds a directory's episodes
to another adder (e.g. the n-step transition adder of a Reverb table), which stores exactly what it
would have stored online.
"""

import glob
import os
from typing import Any, Dict, Iterable, Iterator, List, Optional

import dm_env
import numpy as np

from priorax import types

_PATTERN = "episode_*.npz"


class DatasetError(ValueError):
  """A dataset directory that is missing, empty or malformed."""


class EpisodeWriter:
  """An adder that writes each finished episode to `directory/episode_<n>.npz`.

  Episodes are numbered after those already in the directory, so several writers in turn (or a
  resumed collection) append to one dataset.
  """

  def __init__(self, directory: str):
    os.makedirs(directory, exist_ok=True)
    self._directory = directory
    self._steps: Optional[Dict[str, List[Any]]] = None

  def add_first(self, timestep: dm_env.TimeStep) -> None:
    if not timestep.first():
      raise ValueError(f"add_first needs a FIRST timestep, got step_type={timestep.step_type}.")
    self._steps = {"observations": [timestep.observation], "actions": [], "rewards": [],
                   "discounts": []}

  def add(self, action: types.NestedArray, next_timestep: dm_env.TimeStep,
          extras: types.NestedArray = ()) -> None:
    del extras  # A dataset holds what the environment saw; actor extras are not kept.
    if self._steps is None:
      raise ValueError("add called outside an episode; call add_first first.")
    self._steps["actions"].append(np.asarray(action))
    self._steps["rewards"].append(np.asarray(next_timestep.reward))
    self._steps["discounts"].append(np.asarray(next_timestep.discount))
    self._steps["observations"].append(next_timestep.observation)
    if next_timestep.last():
      self._write(last=True)

  def reset(self) -> None:
    """Writes a cut-off episode (no last step) if it has any step, then forgets it."""
    if self._steps is not None and self._steps["actions"]:
      self._write(last=False)
    self._steps = None

  def _write(self, last: bool) -> None:
    steps, self._steps = self._steps, None
    keys = sorted(steps["observations"][0])
    arrays = {f"observation_{i}": np.stack([o[k] for o in steps["observations"]])
              for i, k in enumerate(keys)}
    index = len(glob.glob(os.path.join(self._directory, _PATTERN)))
    path = os.path.join(self._directory, f"episode_{index:06d}.npz")
    np.savez_compressed(path + ".tmp.npz", observation_keys=np.asarray(keys), last=last,
                        action=np.stack(steps["actions"]), reward=np.stack(steps["rewards"]),
                        discount=np.stack(steps["discounts"]), **arrays)
    os.replace(path + ".tmp.npz", path)  # Readers never see a partial file.


def episode_paths(directory: str) -> List[str]:
  """The episode files of a dataset directory, in order; raises DatasetError if there are none."""
  paths = sorted(glob.glob(os.path.join(directory, _PATTERN)))
  if not paths:
    raise DatasetError(f"dataset directory {directory!r} holds no {_PATTERN} files")
  return paths


def read_episode(path: str) -> Iterator[tuple[Optional[np.ndarray], dm_env.TimeStep]]:
  """Yields (a_{t−1}, timestep_t) for t = 0 … T: (None, first), then each action and its result."""
  try:
    with np.load(path) as data:
      keys = [str(k) for k in data["observation_keys"]]
      observations = [data[f"observation_{i}"] for i in range(len(keys))]
      action, reward, discount = data["action"], data["reward"], data["discount"]
      last = bool(data["last"])
  except (OSError, KeyError, ValueError) as e:
    raise DatasetError(f"{path} is not a priorax episode file ({e})") from None
  length = len(action)
  if any(len(o) != length + 1 for o in observations) or len(reward) != length or \
      len(discount) != length or length < 1:
    raise DatasetError(f"{path}: {length} actions but observations/rewards/discounts of other "
                       f"lengths")

  def observation(t):
    return {k: o[t] for k, o in zip(keys, observations)}

  yield None, dm_env.restart(observation(0))
  for t in range(length):
    if t == length - 1 and last:
      if discount[t] == 0:
        timestep = dm_env.termination(reward[t], observation(t + 1))
      else:
        timestep = dm_env.truncation(reward[t], observation(t + 1), discount[t])
    else:
      timestep = dm_env.transition(reward[t], observation(t + 1), discount[t])
    yield action[t], timestep


def replay_into(directory: str, adder: Any,
                observation_keys: Optional[Iterable[str]] = None) -> int:
  """Feeds every episode of `directory` to `adder` (add_first/add; reset after a cut-off
  episode); returns the number of steps fed.

  With `observation_keys`, an episode whose observations have other keys is refused (DatasetError)
  before anything of it is fed.
  """
  expected = None if observation_keys is None else sorted(observation_keys)
  steps = 0
  for path in episode_paths(directory):
    timestep = None
    for action, timestep in read_episode(path):
      if action is None:
        if expected is not None and sorted(timestep.observation) != expected:
          raise DatasetError(f"{path} has observation keys {sorted(timestep.observation)}; this "
                             f"environment has {expected} (was the dataset recorded on another "
                             f"environment, or with/without --expert?)")
        adder.add_first(timestep)
      else:
        adder.add(action, timestep)
        steps += 1
    if not timestep.last():
      adder.reset()
  return steps
