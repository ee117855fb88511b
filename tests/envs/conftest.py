"""A scripted dm_env environment for the wrapper and registry tests: known rewards, discounts,
episode length and asymmetric action bounds, so every wrapper's maths can be checked by hand."""

from typing import Sequence

import dm_env
from dm_env import specs
import numpy as np
import pytest

# Imported before any test module imports dm_control: it picks MuJoCo's GL backend (EGL, OSMesa).
import priorax.envs  # pylint: disable=unused-import


class FakeEnvironment(dm_env.Environment):
  """Plays scripted rewards and discounts; the episode ends after `len(rewards)` steps.

  Observations: "position" float64 (2,), "height" float64 scalar, "count" int64 scalar (the steps
  taken). Actions: float64 (2,) in [-2, 1] x [0, 4]. `actions` records every action received.
  """

  def __init__(
      self, rewards: Sequence[float] = (1.0, 2.0, 3.0), discounts: Sequence[float] | None = None
  ):
    self._rewards = list(rewards)
    # By default discount 0 on the last step, as a terminating dm_control task gives.
    if discounts is None:
      discounts = [1.0] * (len(rewards) - 1) + [0.0]
    self._discounts = list(discounts)
    self._step = 0
    self._reset_next_step = True
    self.actions: list[np.ndarray] = []
    self.marker = "reached through the wrappers"

  def _observation(self) -> dict[str, np.ndarray]:
    return {
        "position": np.array([0.5, -0.5]) * self._step,
        "height": np.float64(1.5),
        "count": np.int64(self._step),
    }

  def reset(self) -> dm_env.TimeStep:
    self._step = 0
    self._reset_next_step = False
    return dm_env.restart(self._observation())

  def step(self, action: np.ndarray) -> dm_env.TimeStep:
    if self._reset_next_step:
      return self.reset()
    self.actions.append(action)
    reward, discount = self._rewards[self._step], self._discounts[self._step]
    self._step += 1
    if self._step == len(self._rewards):
      self._reset_next_step = True
      return dm_env.TimeStep(dm_env.StepType.LAST, reward, discount, self._observation())
    return dm_env.transition(reward, self._observation(), discount)

  def observation_spec(self) -> dict[str, specs.Array]:
    return {
        "position": specs.Array((2,), np.float64, name="position"),
        "height": specs.Array((), np.float64, name="height"),
        "count": specs.Array((), np.int64, name="count"),
    }

  def action_spec(self) -> specs.BoundedArray:
    return specs.BoundedArray((2,), np.float64, minimum=[-2.0, 0.0], maximum=[1.0, 4.0])


@pytest.fixture(name="fake_environment")
def fake_environment_fixture() -> type[FakeEnvironment]:
  """The class, so each test scripts its own rewards and discounts."""
  return FakeEnvironment
