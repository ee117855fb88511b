"""Environment specs (Acme's `EnvironmentSpec`), built from a dm_env environment."""

from typing import Any, NamedTuple

import dm_env


class EnvironmentSpec(NamedTuple):
  """Full spec of an environment's interface: dicts of dm_env specs for observations."""

  observations: Any
  actions: Any
  rewards: Any
  discounts: Any


def make_environment_spec(environment: dm_env.Environment) -> EnvironmentSpec:
  """Reads the four specs of a dm_env environment."""
  return EnvironmentSpec(
      observations=environment.observation_spec(),
      actions=environment.action_spec(),
      rewards=environment.reward_spec(),
      discounts=environment.discount_spec(),
  )
