"""Task families for multi-task training and transfer of default policies: the `family:` prefix.

Galashov et al. 2019, "Information asymmetry in KL-regularized RL" (https://arxiv.org/abs/1905.01240):
a default policy π0 that is denied the task information learns the behaviour shared by a family of
tasks, and then regularises learning of a new task of that family. A family therefore has

- training tasks, one sampled per episode (`family:<name>`), and
- held-out tasks for transfer, each also addressable alone (`family:<name>-<task>`; the held-out
  task of every family is called `holdout`, e.g. `family:reacher_targets-holdout`),

and dict observations in which the task information sits under explicit keys (`task_keys`), so that
`prior_observation_keys` can leave them out.
"""

import dataclasses
from typing import Callable, Dict, Sequence, Tuple

import dm_env
import numpy as np
from dm_control.rl import control
from dm_control.suite import base as suite_base
from dm_control.suite import cheetah
from dm_control.suite import reacher
from dm_control.suite.utils import randomizers
from dm_control.utils import rewards

from priorax.envs import ant_boxes
from priorax.envs import registry

PREFIX = "family"
HOLDOUT = "holdout"


@dataclasses.dataclass(frozen=True)
class TaskFamily:
  """A family of tasks sharing one body and one observation layout.

  Attributes:
    name: the family's name (`family:<name>`).
    training_tasks: names of the tasks sampled, one per episode, by `family:<name>`.
    heldout_tasks: names of tasks kept out of training (for transfer).
    task_keys: the observation keys that carry task information (hide them from the prior).
    load: `(tasks, seed) -> environment` that samples one of `tasks` per episode.
  """

  name: str
  training_tasks: Tuple[str, ...]
  heldout_tasks: Tuple[str, ...]
  task_keys: Tuple[str, ...]
  load: Callable[[Sequence[str], int], dm_env.Environment]


# --- reacher_targets -------------------------------------------------------------------------------
# The suite's reacher (a two-link planar arm, sparse reward 1 while the finger touches the target)
# with the target placed at one of a few points on an arc instead of anywhere in the disc. A prior
# that sees the arm (`position`, `velocity`) but not the target (`to_target`) can still learn where
# targets come from ("swing the finger towards this arc"), which is exactly the shared behaviour
# that speeds up a new target on the arc (Galashov et al. 2019, §5.1 "go to one of K targets").
# Chosen as the cheap family because one reacher step is ~0.1 ms of physics, so on a 2-core machine
# a run is bounded by learner updates, and a transfer run of 50k environment steps takes minutes.
_REACHER_RADIUS = 0.15  # Inside the arm's 0.21 reach, outside its 0.05 minimum.
_REACHER_TARGET_SIZE = 0.05  # reacher-easy's target.
# Target angles (degrees, clockwise from +y as in the suite): the held-out angle lies between
# training angles, so what the prior learns on the arc applies to it.
_REACHER_ANGLES = {"target0": 0.0, "target30": 30.0, "target90": 90.0, "target120": 120.0,
                   HOLDOUT: 60.0}


class ReacherTargets(reacher.Reacher):
  """The suite's reacher with the target drawn from a fixed set of positions, one per episode."""

  def __init__(self, angles_deg: Sequence[float], random=None):
    super().__init__(target_size=_REACHER_TARGET_SIZE, random=random)
    self._angles = np.deg2rad(np.asarray(angles_deg, np.float64))

  def initialize_episode(self, physics):
    physics.named.model.geom_size["target", 0] = _REACHER_TARGET_SIZE
    randomizers.randomize_limited_and_rotational_joints(physics, self.random)
    angle = self._angles[self.random.randint(len(self._angles))]
    physics.named.model.geom_pos["target", "x"] = _REACHER_RADIUS * np.sin(angle)
    physics.named.model.geom_pos["target", "y"] = _REACHER_RADIUS * np.cos(angle)
    # Skips Reacher's own target placement (anywhere in the disc); keeps the base task's.
    suite_base.Task.initialize_episode(self, physics)


def _load_reacher_targets(tasks: Sequence[str], seed: int) -> dm_env.Environment:
  physics = reacher.Physics.from_xml_string(*reacher.get_model_and_assets())
  task = ReacherTargets([_REACHER_ANGLES[t] for t in tasks], random=seed)
  return control.Environment(physics, task, time_limit=20)


# --- cheetah_speeds --------------------------------------------------------------------------------
# The suite's cheetah asked to run forward at a target speed, one per episode: the reward is the
# suite's `run` reward with 10 m/s replaced by the target v, min(max(speed / v, 0), 1). The target
# is observed under `target_speed`. What the tasks share is a running gait, which a prior that sees
# only the body (`position`, `velocity`) can learn; the held-out task is the suite's
# `cheetah-run` itself (v = 10 m/s, faster than any training target): the "walk → run" transfer
# of the information-asymmetry paper's locomotion experiments (Galashov et al. 2019, §5.2).
_CHEETAH_SPEEDS = {"speed2": 2.0, "speed4": 4.0, "speed6": 6.0, HOLDOUT: 10.0}


class CheetahSpeeds(cheetah.Cheetah):
  """The suite's cheetah with a target running speed drawn from a fixed set, one per episode."""

  def __init__(self, speeds: Sequence[float], random=None):
    super().__init__(random=random)
    self._speeds = np.asarray(speeds, np.float64)
    self._speed = float(self._speeds[0])

  def initialize_episode(self, physics):
    self._speed = float(self._speeds[self.random.randint(len(self._speeds))])
    super().initialize_episode(physics)

  def get_observation(self, physics):
    observation = super().get_observation(physics)
    observation["target_speed"] = np.array([self._speed])
    return observation

  def get_reward(self, physics):
    return rewards.tolerance(physics.speed(), bounds=(self._speed, float("inf")),
                             margin=self._speed, value_at_margin=0, sigmoid="linear")


def _load_cheetah_speeds(tasks: Sequence[str], seed: int) -> dm_env.Environment:
  physics = cheetah.Physics.from_xml_string(*cheetah.get_model_and_assets())
  task = CheetahSpeeds([_CHEETAH_SPEEDS[t] for t in tasks], random=seed)
  return control.Environment(physics, task, time_limit=10)


FAMILIES: Dict[str, TaskFamily] = {}


def add_family(family: TaskFamily) -> None:
  """Makes `family` loadable as `family:<name>` and `family:<name>-<task>`."""
  if family.name in FAMILIES:
    raise ValueError(f"task family {family.name!r} is already defined")
  FAMILIES[family.name] = family


add_family(TaskFamily(
    name="ant_boxes",
    training_tasks=("go_to_target", "move_box"),
    heldout_tasks=(HOLDOUT,),
    task_keys=ant_boxes.TASK_KEYS,
    load=ant_boxes.load))
add_family(TaskFamily(
    name="reacher_targets",
    training_tasks=tuple(t for t in _REACHER_ANGLES if t != HOLDOUT),
    heldout_tasks=(HOLDOUT,),
    task_keys=("to_target",),
    load=_load_reacher_targets))
add_family(TaskFamily(
    name="cheetah_speeds",
    training_tasks=tuple(t for t in _CHEETAH_SPEEDS if t != HOLDOUT),
    heldout_tasks=(HOLDOUT,),
    task_keys=("target_speed",),
    load=_load_cheetah_speeds))


def list_names() -> list[str]:
  """`family:<name>` (training mixture) and `family:<name>-<task>` for every task of each family."""
  names = []
  for family in FAMILIES.values():
    names.append(f"{PREFIX}:{family.name}")
    names += [f"{PREFIX}:{family.name}-{t}" for t in family.training_tasks + family.heldout_tasks]
  return names


def parse_name(name: str) -> Tuple[TaskFamily, Tuple[str, ...]]:
  """"family:<name>[-<task>]" -> (family, the tasks sampled per episode).

  Raises:
    UnknownEnvironmentError: the family or task is unknown (listing the valid names).
  """
  rest = name.removeprefix(f"{PREFIX}:")
  family_name, separator, task = rest.partition("-")
  if family_name not in FAMILIES:
    raise registry.unknown_environment_error(f"Unknown task family {family_name!r}", name,
                                             list_names())
  family = FAMILIES[family_name]
  if not separator:
    return family, family.training_tasks
  if task not in family.training_tasks + family.heldout_tasks:
    raise registry.unknown_environment_error(
        f"Unknown task {task!r} of family {family_name!r}", name, list_names())
  return family, (task,)


def load(name: str, seed: int) -> dm_env.Environment:
  """Loads `family:<name>` (a training task per episode) or one task `family:<name>-<task>`."""
  family, tasks = parse_name(name)
  return family.load(tasks, seed)
