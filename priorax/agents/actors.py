"""Actors: a generic feed-forward actor (Acme's `GenericActor`), a recurrent actor that keeps and
stores its core state (R2D2), and the variable client they pull from.

A feed-forward policy is a pure function `policy(params, key, observation) -> action` for one
unbatched observation, or `-> (action, extras)` for a policy that also reports something about
its choice (e.g. the behaviour log-probability an off-policy correction needs); a recurrent one
is `policy(params, key, core_input, state) -> (action, next_state)`. The actor jits it on the CPU
device, keeps its own RNG key and feeds an adder, handing it the extras of each step.
"""

from typing import Any, Callable, Optional

import chex
import dm_env
import jax
import numpy as np

from priorax import core
from priorax import specs
from priorax import types
from priorax.networks import recurrent

# -> action, or (action, extras) for an actor made with `has_extras=True`.
Policy = Callable[[Any, chex.PRNGKey, types.Observation], Any]
RecurrentPolicy = Callable[[Any, chex.PRNGKey, recurrent.CoreInput, Any], tuple[chex.Array, Any]]


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


class RecurrentActor(core.Actor):
  """Acts with a jitted CPU recurrent policy over (x_t, a_{t−1}, r_{t−1}); stores its state.

  The core state is carried from step to step and reset to `initial_state` (and a_{−1}, r_{−1} to
  zeros) only at `observe_first`, i.e. at an episode start. With each step t the adder receives
  `RecurrentExtras(h_t, a_{t−1}, r_{t−1})`, h_t being the state the policy was called with, so a
  learner can replay a sequence from the state stored at its first step (R2D2, Kapturowski et
  al. 2019; see `priorax.networks.recurrent`).
  """

  def __init__(self, policy: RecurrentPolicy, initial_state: Any,
               environment_spec: specs.EnvironmentSpec, variable_client: VariableClient,
               key: chex.PRNGKey, adder: Optional[Any] = None, *, has_extras: bool = False):
    """Makes the actor.

    Args:
      policy: `policy(params, key, core_input, state) -> (action, next_state)`, unbatched; with
        `has_extras`, `-> ((action, extras), next_state)`, the extras being stored as the step's
        `RecurrentExtras.policy_extras`.
      initial_state: the unbatched state of an episode's first step (e.g.
        `network.initial_state(None)`).
      environment_spec: gives the shapes of the zero a_{−1}, r_{−1}.
      variable_client: where the policy's parameters come from.
      key: the actor's RNG key.
      adder: records steps with their `RecurrentExtras`; None records nothing.
      has_extras: whether the policy also returns extras (above).
    """

    def policy_step(params, key, inputs, state):
      key, policy_key = jax.random.split(key)
      action, next_state = policy(params, policy_key, inputs, state)
      return action, next_state, key

    self._cpu = jax.devices("cpu")[0]
    self._policy_step = jax.jit(policy_step)
    self._client = variable_client
    self._key = jax.device_put(key, self._cpu)
    self._adder = adder
    self._initial_state = jax.device_put(initial_state, self._cpu)
    self._has_extras = has_extras
    zeros = recurrent.zero_core_input(environment_spec)
    self._zero_action, self._zero_reward = zeros.prev_action, zeros.prev_reward
    self._state = self._initial_state
    self._prev_action, self._prev_reward = self._zero_action, self._zero_reward
    # (extras of the step being taken, the state after it), set by select_action.
    self._pending: Optional[tuple[recurrent.RecurrentExtras, Any]] = None

  def select_action(self, observation: types.Observation) -> np.ndarray:
    inputs = recurrent.CoreInput(observation, self._prev_action, self._prev_reward)
    action, next_state, self._key = self._policy_step(
        self._client.params, self._key, inputs, self._state)
    policy_extras = ()
    if self._has_extras:
      action, policy_extras = action
    extras = recurrent.RecurrentExtras(self._state, self._prev_action, self._prev_reward,
                                       policy_extras)
    self._pending = (extras, next_state)
    return np.asarray(action)

  def observe_first(self, timestep: dm_env.TimeStep) -> None:
    self._state = self._initial_state
    self._prev_action, self._prev_reward = self._zero_action, self._zero_reward
    self._pending = None
    if self._adder is not None:
      self._adder.add_first(timestep)

  def observe(self, action, next_timestep: dm_env.TimeStep) -> None:
    if self._pending is None:
      raise ValueError("RecurrentActor.observe needs select_action first: the step's core state "
                       "comes from it.")
    extras, self._state = self._pending
    self._pending = None
    if self._adder is not None:
      self._adder.add(action, next_timestep, extras)
    self._prev_action = np.asarray(action, self._zero_action.dtype)
    self._prev_reward = np.asarray(next_timestep.reward, self._zero_reward.dtype)

  def update(self, wait: bool = False) -> None:
    self._client.update(wait)

  @property
  def state(self) -> Any:
    """The core state the next `select_action` starts from."""
    return self._state

  @property
  def key(self) -> chex.PRNGKey:
    """The actor's RNG key (saved in checkpoints so a resumed run continues its stream)."""
    return self._key

  @key.setter
  def key(self, value: chex.PRNGKey) -> None:
    self._key = jax.device_put(value, self._cpu)
