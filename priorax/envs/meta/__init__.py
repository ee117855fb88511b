"""Task distributions for meta-RL as the `meta:` family (Humplik et al. 2019, METHODS §7).

Every `meta:<name>` environment samples a hidden task at each reset and keeps it for the episode;
the task descriptor is the observation `task` (select the policy's keys without it to hide it):
  meta:point_goal        goal on a semicircle, sparse reward, 3 trials per episode (point_mass)
  meta:numpad            hidden sequence of 4 tiles on a 3×3 pad (point_mass)
  meta:cheetah_velocity  run at a hidden target velocity, dense reward (locomotion)
  meta:walker_heading    walk to a hidden target among ±1.5 m, ±3 m, sparse reward (locomotion)
The previous action and reward, which a meta-RL agent conditions on, are the recurrent core's
inputs (`priorax.networks.recurrent`), not observations.
"""

from typing import Callable

from dm_control.rl import control

from priorax.envs import registry
from priorax.envs.meta import locomotion
from priorax.envs.meta import point_mass

PREFIX = "meta"

_LOADERS: dict[str, Callable[[int], control.Environment]] = {
    "point_goal": point_mass.point_goal,
    "numpad": point_mass.numpad,
    "cheetah_velocity": locomotion.cheetah_velocity,
    "walker_heading": locomotion.walker_heading,
}


def list_names() -> list[str]:
  """Every `meta:` environment name."""
  return [f"{PREFIX}:{task}" for task in _LOADERS]


def load(name: str, seed: int) -> control.Environment:
  """Loads `meta:<task>` with its task distribution seeded by `seed`."""
  task = name.removeprefix(f"{PREFIX}:")
  if task == name or task not in _LOADERS:
    problem = f"Missing '{PREFIX}:'" if task == name else f"Unknown {PREFIX} task {task!r}"
    raise registry.unknown_environment_error(problem, name, list_names())
  return _LOADERS[task](seed)
