"""Small specs and batches for REQ's tests."""

import jax
import numpy as np
from dm_env import specs as dm_specs

from priorax import specs
from priorax import types


def environment_spec(observation_size: int, action_size: int) -> specs.EnvironmentSpec:
  return specs.EnvironmentSpec(
      observations={"x": dm_specs.Array((observation_size,), np.float32, "x")},
      actions=dm_specs.BoundedArray((action_size,), np.float32, -1.0, 1.0, "action"),
      rewards=dm_specs.Array((), np.float32, "reward"),
      discounts=dm_specs.BoundedArray((), np.float32, 0.0, 1.0, "discount"))


def random_transitions(key, *, batch: int, observation_size: int,
                       action_size: int) -> types.Transition:
  keys = jax.random.split(key, 4)
  return types.Transition(
      observation={"x": jax.random.normal(keys[0], (batch, observation_size))},
      action=jax.random.uniform(keys[1], (batch, action_size), minval=-1.0, maxval=1.0),
      reward=jax.random.normal(keys[2], (batch,)),
      discount=np.full((batch,), 0.99, np.float32),
      next_observation={"x": jax.random.normal(keys[3], (batch, observation_size))})
