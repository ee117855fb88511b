"""dm_env wrappers that give every agent the same interface, one job per class.

Observations stay dicts (priors select a subset of keys: information asymmetry), made float32 and
at least 1-D so they can be concatenated; actions are canonicalised to [-1, 1]; an action can be
repeated for several environment steps. `EnvironmentWrapper` forwards everything, so attributes of
the wrapped environment (e.g. dm_control's `physics`) stay reachable through any stack of wrappers.
"""

from typing import Any, Mapping, Sequence

import dm_env
from dm_env import specs
import numpy as np
import tree

from priorax import types


class EnvironmentWrapper(dm_env.Environment):
  """Forwards every call and attribute to the wrapped environment; subclasses override one job."""

  def __init__(self, environment: dm_env.Environment):
    self._environment = environment

  def __getattr__(self, name: str) -> Any:
    # Reached only for names the wrapper lacks; dunder lookups (copy, pickle) must not recurse.
    if name.startswith("__") or name == "_environment":
      raise AttributeError(name)
    return getattr(self._environment, name)

  def _convert(self, timestep: dm_env.TimeStep) -> dm_env.TimeStep:
    """Maps every timestep the wrapper returns; the identity unless a subclass overrides it."""
    return timestep

  def reset(self) -> dm_env.TimeStep:
    return self._convert(self._environment.reset())

  def step(self, action: types.NestedArray) -> dm_env.TimeStep:
    return self._convert(self._environment.step(action))

  def observation_spec(self) -> Any:
    return self._environment.observation_spec()

  def action_spec(self) -> Any:
    return self._environment.action_spec()

  def reward_spec(self) -> Any:
    return self._environment.reward_spec()

  def discount_spec(self) -> Any:
    return self._environment.discount_spec()

  def close(self) -> None:
    self._environment.close()


def _float32_spec(spec: specs.Array) -> specs.Array:
  if np.issubdtype(spec.dtype, np.floating):
    return spec.replace(dtype=np.float32)
  return spec


def _cast(value: types.NestedArray | None, spec: Any) -> types.NestedArray | None:
  """Casts each leaf of `value` to its spec's dtype; None (the first step's reward) stays None."""
  if value is None:
    return None
  return tree.map_structure(lambda leaf_spec, leaf: np.asarray(leaf, leaf_spec.dtype), spec, value)


class SinglePrecisionWrapper(EnvironmentWrapper):
  """Makes floating observations, rewards and discounts float32 (integers are kept)."""

  def __init__(self, environment: dm_env.Environment):
    super().__init__(environment)
    self._observation_spec = tree.map_structure(_float32_spec, environment.observation_spec())
    self._reward_spec = tree.map_structure(_float32_spec, environment.reward_spec())
    self._discount_spec = tree.map_structure(_float32_spec, environment.discount_spec())

  def _convert(self, timestep: dm_env.TimeStep) -> dm_env.TimeStep:
    return timestep._replace(
        observation=_cast(timestep.observation, self._observation_spec),
        reward=_cast(timestep.reward, self._reward_spec),
        discount=_cast(timestep.discount, self._discount_spec),
    )

  def observation_spec(self) -> Any:
    return self._observation_spec

  def reward_spec(self) -> Any:
    return self._reward_spec

  def discount_spec(self) -> Any:
    return self._discount_spec


class AtLeast1DObservationWrapper(EnvironmentWrapper):
  """Makes scalar observations shape (1,), so every observation can be concatenated."""

  def __init__(self, environment: dm_env.Environment):
    super().__init__(environment)
    self._observation_spec = tree.map_structure(
        lambda spec: spec.replace(shape=(1,)) if spec.shape == () else spec,
        environment.observation_spec(),
    )

  def _convert(self, timestep: dm_env.TimeStep) -> dm_env.TimeStep:
    return timestep._replace(observation=tree.map_structure(np.atleast_1d, timestep.observation))

  def observation_spec(self) -> Any:
    return self._observation_spec


class CanonicalActionWrapper(EnvironmentWrapper):
  """Takes float32 actions in [-1, 1] and maps them affinely onto the environment's bounds.

  With bounds [l, u]: a ↦ clip(l + (clip(a, -1, 1) + 1)(u - l)/2, l, u), so -1 ↦ l, 0 ↦ (l + u)/2
  and 1 ↦ u. The outer clip removes rounding past a bound.
  """

  def __init__(self, environment: dm_env.Environment):
    super().__init__(environment)
    spec = environment.action_spec()
    if not isinstance(spec, specs.BoundedArray):
      raise ValueError(
          f"CanonicalActionWrapper needs a single BoundedArray action spec: got {spec!r}."
      )
    self._minimum = np.broadcast_to(spec.minimum, spec.shape).astype(np.float64)
    self._maximum = np.broadcast_to(spec.maximum, spec.shape).astype(np.float64)
    if not (np.all(np.isfinite(self._minimum)) and np.all(np.isfinite(self._maximum))):
      raise ValueError(f"CanonicalActionWrapper needs finite action bounds: got {spec!r}.")
    self._dtype = spec.dtype
    self._action_spec = specs.BoundedArray(
        shape=spec.shape, dtype=np.float32, minimum=-1.0, maximum=1.0, name=spec.name
    )

  def step(self, action: types.NestedArray) -> dm_env.TimeStep:
    canonical = np.clip(np.asarray(action, np.float64), -1.0, 1.0)
    scaled = self._minimum + (canonical + 1.0) * (self._maximum - self._minimum) / 2.0
    return self._environment.step(np.clip(scaled, self._minimum, self._maximum).astype(self._dtype))

  def action_spec(self) -> specs.BoundedArray:
    return self._action_spec


def check_action_repeat(action_repeat: int) -> None:
  """Raises ValueError unless `action_repeat` is an int >= 1 (bools are rejected)."""
  if not isinstance(action_repeat, int) or isinstance(action_repeat, bool) or action_repeat < 1:
    raise ValueError(f"action_repeat must be an int >= 1: got {action_repeat!r}.")


class ActionRepeatWrapper(EnvironmentWrapper):
  """Repeats each action for `num_repeats` environment steps, stopping at the episode's end.

  Over the m ≤ n steps taken, with rewards r_k and discounts d_k (Acme's ActionRepeatWrapper):
    R = Σ_{k<m} (Π_{j<k} d_j) r_k,    D = Π_{k<m} d_k,
  which is the plain sum of rewards while discounts are 1 (dm_control until termination).
  """

  def __init__(self, environment: dm_env.Environment, num_repeats: int):
    super().__init__(environment)
    check_action_repeat(num_repeats)
    self._num_repeats = num_repeats

  def step(self, action: types.NestedArray) -> dm_env.TimeStep:
    timestep = self._environment.step(action)
    # Stepping after the last step resets (dm_env): that first step carries no reward to sum.
    if timestep.first():
      return timestep
    reward, discount = timestep.reward, timestep.discount
    for _ in range(self._num_repeats - 1):
      if timestep.last():
        break
      timestep = self._environment.step(action)
      reward = reward + discount * timestep.reward
      discount = discount * timestep.discount
    return timestep._replace(reward=reward, discount=discount)


class ObservationKeysWrapper(EnvironmentWrapper):
  """Keeps a subset of a dict observation's keys, in the given order (information asymmetry)."""

  def __init__(self, environment: dm_env.Environment, keys: Sequence[str]):
    super().__init__(environment)
    spec = environment.observation_spec()
    if not isinstance(spec, Mapping):
      raise ValueError(f"ObservationKeysWrapper needs dict observations: got the spec {spec!r}.")
    if isinstance(keys, str):
      raise ValueError(f"observation keys must be a sequence of keys, not a string: got {keys!r}.")
    if not keys or len(set(keys)) != len(keys):
      raise ValueError(f"observation keys must be non-empty and distinct: got {list(keys)!r}.")
    for key in keys:
      if key not in spec:
        raise ValueError(f"Unknown observation key {key!r}; valid keys: {', '.join(spec)}.")
    self._keys = tuple(keys)
    self._observation_spec = {key: spec[key] for key in self._keys}

  def _convert(self, timestep: dm_env.TimeStep) -> dm_env.TimeStep:
    return timestep._replace(observation={key: timestep.observation[key] for key in self._keys})

  def observation_spec(self) -> dict[str, specs.Array]:
    return self._observation_spec
