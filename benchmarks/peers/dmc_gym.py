"""A dm_control suite task as a `gymnasium.Env`, for the peer libraries of `peers_sac.py`.

Stable-Baselines3 and sbx take Gymnasium environments only, while priorax drives dm_control
directly; this wrapper lets all three run the same task. It runs inside the peers' own virtual
environments (never priorax's), so it imports nothing from priorax.

- Observations: the task's dict observation flattened into one float32 vector, keys in the
  task's own order (the same order dm_control's `flatten_observation` uses).
- Actions: a float32 `Box` on [-1, 1]^d, rescaled affinely onto the task's action bounds.
- Episode ends: a last step with discount 0 is `terminated`; a last step with discount > 0 (the
  suite's time limit) is `truncated`, so the peers bootstrap through it.
"""

from typing import Any, Dict, Optional, Tuple

import gymnasium as gym
import numpy as np
from dm_control import suite


def _flatten(observation: Dict[str, Any]) -> np.ndarray:
  return np.concatenate(
      [np.asarray(v, dtype=np.float32).reshape(-1) for v in observation.values()])


class DMCGym(gym.Env):
  """dm_control `domain-task` as a Gymnasium environment with flat observations."""

  metadata = {"render_modes": []}

  def __init__(self, domain: str, task: str, seed: Optional[int] = None):
    self._env = suite.load(domain, task, task_kwargs={"random": seed})
    spec = self._env.action_spec()
    self._low = spec.minimum.astype(np.float64)
    self._high = spec.maximum.astype(np.float64)
    self.action_space = gym.spaces.Box(-1.0, 1.0, shape=spec.shape, dtype=np.float32)
    size = sum(int(np.prod(s.shape)) for s in self._env.observation_spec().values())
    self.observation_space = gym.spaces.Box(-np.inf, np.inf, shape=(size,), dtype=np.float32)

  def reset(self, *, seed: Optional[int] = None,
            options: Optional[Dict[str, Any]] = None) -> Tuple[np.ndarray, Dict[str, Any]]:
    super().reset(seed=seed)
    if seed is not None:
      self._env.task.random.seed(seed)
    return _flatten(self._env.reset().observation), {}

  def step(self, action: np.ndarray) -> Tuple[np.ndarray, float, bool, bool, Dict[str, Any]]:
    action = np.clip(np.asarray(action, dtype=np.float64), -1.0, 1.0)
    scaled = self._low + (action + 1.0) * 0.5 * (self._high - self._low)
    time_step = self._env.step(scaled)
    terminated = time_step.last() and time_step.discount == 0.0
    truncated = time_step.last() and not terminated
    return (_flatten(time_step.observation), float(time_step.reward), bool(terminated),
            bool(truncated), {})


def make(name: str, seed: Optional[int] = None) -> DMCGym:
  """Makes `DMCGym` from priorax's env name `dmc:<domain>-<task>`, e.g. `dmc:cartpole-swingup`."""
  prefix, _, rest = name.partition(":")
  domain, _, task = rest.partition("-")
  if prefix != "dmc" or not domain or not task:
    raise ValueError(f"env name {name!r} is not of the form dmc:<domain>-<task>")
  return DMCGym(domain, task, seed=seed)
