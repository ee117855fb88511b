"""Fixtures for launcher tests: tiny agent settings and a scripted environment family."""

import dm_env
from dm_env import specs
import numpy as np
import pytest

from priorax import envs

# Small enough that a few hundred steps run in seconds on 2 cores.
TINY = ["--set", "policy_hidden_sizes=16,16", "--set", "critic_hidden_sizes=16,16",
        "--set", "batch_size=32", "--set", "min_replay_size=64"]


class NaNRewardEnvironment(dm_env.Environment):
  """A 1-D task whose reward turns NaN after `nan_after` steps in total (a diverging simulator)."""

  def __init__(self, nan_after: int, episode_length: int = 100):
    self._nan_after = nan_after
    self._episode_length = episode_length
    self._total = 0
    self._t = 0

  def reset(self):
    self._t = 0
    return dm_env.restart({"x": np.zeros(2, np.float32)})

  def step(self, action):
    self._t += 1
    self._total += 1
    reward = np.nan if self._total > self._nan_after else float(-np.abs(action).sum())
    observation = {"x": np.full(2, self._t / self._episode_length, np.float32)}
    if self._t >= self._episode_length:
      return dm_env.truncation(reward, observation)
    return dm_env.transition(reward, observation)

  def observation_spec(self):
    return {"x": specs.Array((2,), np.float32, "x")}

  def action_spec(self):
    return specs.BoundedArray((1,), np.float32, -1.0, 1.0, "action")


def _load_test_env(name, seed):
  del seed
  return NaNRewardEnvironment(nan_after=int(name.split(":")[1].split("-")[1]))


@pytest.fixture(scope="session", autouse=True)
def test_environments():
  """Registers `test:nan-<N>` environments (reward NaN after N steps)."""
  try:
    envs.register("test", _load_test_env, lambda: ["test:nan-<N>"])
  except ValueError:
    pass  # Already registered in this process.
