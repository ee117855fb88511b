"""The dm_control suite as the `dmc:` family: `dmc:<domain>-<task>` for every suite task.

Domain and task keep their underscores (`dmc:ball_in_cup-catch`, `dmc:cartpole-swingup_sparse`).
No suite domain contains "-", so splitting at the first "-" recovers the pair exactly (the tests
check this round trip for every task).
"""

import dm_env
from dm_control import suite

from priorax.envs import registry

PREFIX = "dmc"


def environment_name(domain: str, task: str) -> str:
  """The registry name of a suite task, e.g. ("walker", "walk") -> "dmc:walker-walk"."""
  return f"{PREFIX}:{domain}-{task}"


def list_names() -> list[str]:
  """Every suite task's name, in `dm_control.suite.ALL_TASKS` order."""
  return [environment_name(domain, task) for domain, task in suite.ALL_TASKS]


def parse_name(name: str) -> tuple[str, str]:
  """Splits "dmc:<domain>-<task>" into a known (domain, task).

  Raises:
    UnknownEnvironmentError: the name is malformed, or its domain or task is not in the suite.
  """
  rest = name.removeprefix(f"{PREFIX}:")
  domain, separator, task = rest.partition("-")
  if rest == name:
    raise registry.unknown_environment_error(f"Missing '{PREFIX}:'", name, list_names())
  if not separator:
    raise registry.unknown_environment_error("Missing '-<task>'", name, list_names())
  if domain not in suite.TASKS_BY_DOMAIN:
    raise registry.unknown_environment_error(
        f"Unknown {PREFIX} domain {domain!r}", name, list_names()
    )
  if task not in suite.TASKS_BY_DOMAIN[domain]:
    raise registry.unknown_environment_error(
        f"Unknown task {task!r} for {PREFIX} domain {domain!r}", name, list_names()
    )
  return domain, task


def load(name: str, seed: int) -> dm_env.Environment:
  """Loads the suite task `name` ("dmc:<domain>-<task>") with its default time limit, seeded."""
  domain, task = parse_name(name)
  return suite.load(domain, task, task_kwargs={"random": seed})
