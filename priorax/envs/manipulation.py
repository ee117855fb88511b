"""dm_control.manipulation (Jaco arm, bricks) as the `manip:` family: `manip:<task>`.

Only the tasks with feature observations are listed (e.g. `manip:lift_brick_features`,
`manip:stack_2_bricks_features`); the `_vision` ones need a camera renderer per step.
"""

import dm_env

from priorax.envs import registry

PREFIX = "manip"


def list_names() -> list[str]:
  """Every feature-observation manipulation task's name, in `manipulation.ALL` order."""
  from dm_control import manipulation  # Imported on use: loading it builds the task registry.
  return [f"{PREFIX}:{task}" for task in manipulation.ALL if task.endswith("_features")]


def load(name: str, seed: int) -> dm_env.Environment:
  """Loads the manipulation task `name` ("manip:<task>"), seeded."""
  from dm_control import manipulation
  if name not in list_names():
    task = name.removeprefix(f"{PREFIX}:")
    raise registry.unknown_environment_error(f"Unknown {PREFIX} task {task!r}", name,
                                             list_names())
  return manipulation.load(name.removeprefix(f"{PREFIX}:"), seed=seed)
