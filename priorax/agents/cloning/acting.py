"""Acting for distillation: noisy expert, student and DAgger-mixture policies, and the recorder
that keeps the states they visit for the expert to label.

The APC protocol (Galashov et al. 2022, §5) collects data with the expert's mean action plus
Gaussian noise of std 0.2 and evaluates students the same way: a = clip(tanh(μ(s)) + σ_a ε, −1, 1).
"""

from typing import Callable, Optional

import dm_env
import jax
import jax.numpy as jnp
import numpy as np

from priorax import types
from priorax.agents.cloning import experts as experts_lib
from priorax.networks import distributions


def _noisy(mean_action, key, noise: float):
  return jnp.clip(mean_action + noise * jax.random.normal(key, mean_action.shape), -1.0, 1.0)


def _batched(observation):
  return jax.tree_util.tree_map(lambda x: jnp.expand_dims(x, 0), observation)


def make_policy(policy_apply: Callable[..., distributions.GaussianParams], noise: float):
  """`policy(params, key, observation) -> action`: tanh(μ_π(s)) plus N(0, noise²), clipped."""

  def policy(params, key, observation):
    mean_action = jnp.tanh(policy_apply(params, _batched(observation)).mean[0])
    return _noisy(mean_action, key, noise)

  return policy


def make_mixture_policy(policy_apply: Callable[..., distributions.GaussianParams],
                        expert: experts_lib.Expert, beta: float, noise: float):
  """DAgger's acting policy: at each step the expert acts with probability β, else the student.

  `params` are the student's; the expert's are constants of the jitted function. β = 1 is the
  expert alone (its rollouts), β = 0 the student alone.
  """

  def policy(params, key, observation):
    choice_key, noise_key = jax.random.split(key)
    batched = _batched(observation)
    expert_action = expert.mean_action(batched)[0]
    if beta >= 1.0:
      mean_action = expert_action
    else:
      student_action = jnp.tanh(policy_apply(params, batched).mean[0])
      mean_action = jnp.where(jax.random.uniform(choice_key) < beta, expert_action,
                              student_action)
    return _noisy(mean_action, noise_key, noise)

  return policy


class StateRecorder:
  """An adder for `GenericActor` that keeps every state an action was taken in (x_0 … x_{T−1}).

  With `physics_state`, it also keeps the simulator's state at each of them (for perturbing the
  physics). `take()` returns and forgets what was recorded.
  """

  def __init__(self, physics_state: Optional[Callable[[], np.ndarray]] = None):
    self._physics_state = physics_state
    self._observations = []
    self._physics_states = []
    self._pending = None

  def add_first(self, timestep: dm_env.TimeStep) -> None:
    self._record(timestep)

  def add(self, action, next_timestep: dm_env.TimeStep, extras=()) -> None:
    del action, extras
    self._commit()
    if not next_timestep.last():
      self._record(next_timestep)

  def _record(self, timestep):
    physics = self._physics_state() if self._physics_state is not None else None
    self._pending = (timestep.observation, physics)

  def _commit(self):
    observation, physics = self._pending
    self._observations.append(observation)
    if physics is not None:
      self._physics_states.append(physics)
    self._pending = None

  def take(self) -> tuple[types.Observation, Optional[np.ndarray]]:
    """(observations by key [N, ...], physics states [N, P] or None) recorded since the last take."""
    # A plain dict (dm_control gives OrderedDicts), as the synthetic states are.
    observations = {k: np.stack([o[k] for o in self._observations])
                    for k in self._observations[0]}
    physics = np.stack(self._physics_states) if self._physics_states else None
    self._observations, self._physics_states = [], []
    return observations, physics
