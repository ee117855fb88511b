"""A generic feed-forward actor (Acme's `GenericActor`) and the variable client it pulls from.

The policy is a pure function `policy(params, key, observation) -> action` for one unbatched
observation, or `-> (action, extras)` for a policy that also reports something about its choice
(e.g. the behaviour log-probability an off-policy correction needs); the actor jits it on the CPU
device, keeps its own RNG key and feeds an adder, handing it the extras of each step.
"""

from typing import Any, Callable, Optional

import chex
import dm_env
import jax
import numpy as np

from priorax import core
from priorax import types

# -> action, or (action, extras) for an actor made with `has_extras=True`.
Policy = Callable[[Any, chex.PRNGKey, types.Observation], Any]


class VariableClient:
  """Pulls named variables from a VariableSource every `update_period` calls to `update`.

  Parameters are moved to the CPU, where actors run, when the learner holds them elsewhere (a
  GPU); on a CPU-only process they are used as they are, which keeps a per-step update cheap.
  """

  def __init__(self, source: core.VariableSource, name: str, update_period: int = 1):
    if update_period < 1:
      raise ValueError(f"update_period={update_period} must be >= 1")
    self._source = source
    self._name = name
    self._update_period = update_period
    self._calls = 0
    self._cpu = jax.devices("cpu")[0]
    self._copy_to_cpu = jax.default_backend() != "cpu"
    self._params = None

  def update(self, wait: bool = False) -> None:
    self._calls += 1
    if wait or self._params is None or self._calls >= self._update_period:
      self._calls = 0
      params = self._source.get_variables([self._name])[0]
      self._params = jax.device_put(params, self._cpu) if self._copy_to_cpu else params

  @property
  def params(self):
    if self._params is None:
      self.update(wait=True)
    return self._params


class GenericActor(core.Actor):
  """Acts with a jitted CPU policy; records transitions with `adder` when one is given.

  With `has_extras`, the policy returns `(action, extras)`: the extras of the last selected action
  go to `adder.add(action, next_timestep, extras)` (Acme's `actor_core.get_extras`).
  """

  def __init__(self, policy: Policy, variable_client: VariableClient, key: chex.PRNGKey,
               adder: Optional[Any] = None, *, has_extras: bool = False):
    # Parameters and key live on the CPU, so the jitted policy runs there too. The key is split
    # inside the same jitted call: one dispatch per step instead of two.
    def policy_step(params, key, observation):
      key, policy_key = jax.random.split(key)
      return policy(params, policy_key, observation), key

    self._policy_step = jax.jit(policy_step)
    self._client = variable_client
    self._key = jax.device_put(key, jax.devices("cpu")[0])
    self._adder = adder
    self._has_extras = has_extras
    self._extras: types.NestedArray = ()  # Of the last selected action.

  def select_action(self, observation: types.Observation) -> np.ndarray:
    output, self._key = self._policy_step(self._client.params, self._key, observation)
    if self._has_extras:
      output, self._extras = output
    return np.asarray(output)

  def observe_first(self, timestep: dm_env.TimeStep) -> None:
    if self._adder is not None:
      self._adder.add_first(timestep)

  def observe(self, action, next_timestep: dm_env.TimeStep) -> None:
    if self._adder is not None:
      self._adder.add(action, next_timestep, self._extras)

  def update(self, wait: bool = False) -> None:
    self._client.update(wait)

  @property
  def key(self) -> chex.PRNGKey:
    """The actor's RNG key (saved in checkpoints so a resumed run continues its stream)."""
    return self._key

  @key.setter
  def key(self, value: chex.PRNGKey) -> None:
    self._key = jax.device_put(value, jax.devices("cpu")[0])
