"""An Ant in a walled room with K targets and a box: the `family:ant_boxes` task family.

Rebuilt from `dm_control.locomotion` pieces in the spirit of the public task code of Galashov et
al. 2019 (`deepmind-research/box_arrangement`, https://arxiv.org/abs/1905.01240, §5): tasks are sets
of predicates over the walker, the box and the targets, and the reward is sparse,

  r_t = 10 · Σ_i ([p_i on at t] − [p_i on at t−1]) + 50 · [all p_i on at t],

i.e. +10 when a predicate turns on, −10 when it turns off, +50 when all hold, which also ends the
episode (as does the Ant falling over). Physics step 0.005 s, control step 0.05 s, 20 s episodes.

Tasks (one sampled per episode by `family:ant_boxes`):
  go_to_target   the Ant stands on one of the K targets (chosen per episode),
  move_box       the box is pushed onto one of the K targets,
  holdout        both at once (two different targets): held out for transfer.

Observations: `proprioception` (the Ant's joints, velocities, body poses: what the prior sees) and
the task keys `target_positions` (K×3, egocentric), `box_position` (3, egocentric), `task` (which
target each predicate names, one-hot, 2K) and `predicates_on` (2; a predicate not in the task
reads 1). Target and box information are thereby explicit and can be hidden from the prior.
"""

from typing import Sequence

import dm_env
import numpy as np
from dm_control import composer
from dm_control.composer.observation import observable
from dm_control.entities import props
from dm_control.locomotion import arenas
from dm_control.locomotion.walkers import ant
from dm_control.manipulation import props as manipulation_props
from dm_env import specs

from priorax import types
from priorax.envs import wrappers

NUM_TARGETS = 3
TASKS = {"go_to_target": (True, False), "move_box": (False, True), "holdout": (True, True)}
TASK_KEYS = ("target_positions", "box_position", "task", "predicates_on")
_PHYSICS_TIMESTEP = 0.005
_CONTROL_TIMESTEP = 0.05
_TIME_LIMIT = 20.0
_PREDICATE_REWARD = 10.0
_SUCCESS_BONUS = 50.0
_ALIVE_THRESHOLD = -0.5  # The Ant's aliveness, (z-axis · up − 1)/2: below it is upside down.
_BOX_HALF_SIZE = 0.5
_WALKER_PREFIX = "walker/"


def _egocentric(physics, walker, world_positions: np.ndarray) -> np.ndarray:
  """World positions [N, 3] as vectors from the walker's root in its own frame."""
  root = physics.bind(walker.root_body)
  return (np.asarray(world_positions) - root.xpos) @ np.reshape(root.xmat, (3, 3))


class AntBoxes(composer.Task):
  """The predicate task: the active predicates of the episode's task, sparse rewards on changes."""

  def __init__(self, tasks: Sequence[str], seed: int):
    self._tasks = tuple(tasks)
    self._walker = ant.Ant()
    room = arenas.PaddedRoom(room_size=NUM_TARGETS + 1, num_objects=NUM_TARGETS + 1,
                             random_state=np.random.RandomState(seed), pad_with_walls=True)
    self._arena = arenas.MazeWithTargets(maze=room)
    self._targets = [props.PositionDetector(pos=[0, 0, _BOX_HALF_SIZE],
                                            size=[_BOX_HALF_SIZE] * 3, inverted=False,
                                            visible=True) for _ in range(NUM_TARGETS)]
    for target in self._targets:
      self._arena.attach(target)
    self._box = manipulation_props.BoxWithSites(mass=1.5, half_lengths=[_BOX_HALF_SIZE] * 3)
    self._arena.add_free_entity(self._box)
    self._walker.create_root_joints(self._arena.attach(self._walker))
    for obs in self._walker.observables.proprioception + self._walker.observables.kinematic_sensors:
      obs.enabled = True
    self._task_observables = {
        "target_positions": observable.Generic(lambda physics: _egocentric(
            physics, self._walker, [t.site_pos(physics) for t in self._targets])),
        "box_position": observable.Generic(lambda physics: _egocentric(
            physics, self._walker, physics.bind(self._box.geom).xpos[None])[0]),
        "task": observable.Generic(lambda physics: self._task_encoding),
        "predicates_on": observable.Generic(
            lambda physics: np.asarray(self._on, np.float32)),
    }
    for obs in self._task_observables.values():
      obs.enabled = True
    self.set_timesteps(physics_timestep=_PHYSICS_TIMESTEP, control_timestep=_CONTROL_TIMESTEP)
    self._predicates = (False, False)
    self._goal_targets = (0, 0)
    self._on = (True, True)
    self._reward = 0.0
    self._task_encoding = np.zeros(2 * NUM_TARGETS, np.float32)

  @property
  def root_entity(self):
    return self._arena

  @property
  def task_observables(self):
    return self._task_observables

  def initialize_episode_mjcf(self, random_state):
    self._arena.regenerate()  # New spawn, box and target cells.
    self._predicates = TASKS[self._tasks[random_state.randint(len(self._tasks))]]
    walker_goal, box_goal = random_state.choice(NUM_TARGETS, size=2, replace=False)
    self._goal_targets = (walker_goal, box_goal)
    for target in self._targets:
      target.deregister_entities()
    self._task_encoding = np.zeros(2 * NUM_TARGETS, np.float32)
    if self._predicates[0]:
      self._targets[walker_goal].register_entities(self._walker)
      self._task_encoding[walker_goal] = 1.0
    if self._predicates[1]:
      self._targets[box_goal].register_entities(self._box)
      self._task_encoding[NUM_TARGETS + box_goal] = 1.0

  def initialize_episode(self, physics, random_state):
    self._walker.reinitialize_pose(physics, random_state)
    spawn = self._arena.spawn_positions[0]
    yaw = random_state.uniform(-np.pi, np.pi)
    self._walker.shift_pose(physics, [spawn[0], spawn[1], 0.0],
                            [np.cos(yaw / 2), 0, 0, np.sin(yaw / 2)], rotate_velocity=True)
    cells = self._arena.target_positions
    box_xy = cells[0]
    self._box.set_pose(physics, position=[box_xy[0], box_xy[1], _BOX_HALF_SIZE],
                       quaternion=[1.0, 0.0, 0.0, 0.0])
    for target, cell in zip(self._targets, cells[1:]):
      target.set_position(physics, [cell[0], cell[1], _BOX_HALF_SIZE])
    self._on = self._predicates_on()
    self._reward = 0.0

  def _predicates_on(self):
    """Whether each predicate holds; one that is not part of the task always does."""
    walker_goal, box_goal = self._goal_targets
    return (not self._predicates[0] or self._targets[walker_goal].activated,
            not self._predicates[1] or self._targets[box_goal].activated)

  def after_step(self, physics, random_state):
    # The detectors update in their own after_substep hooks, which run before this one.
    on = self._predicates_on()
    turned = sum(int(now) - int(before) for now, before in zip(on, self._on))
    self._reward = _PREDICATE_REWARD * turned + _SUCCESS_BONUS * float(all(on))
    self._on = on

  def get_reward(self, physics):
    return self._reward

  def should_terminate_episode(self, physics):
    return all(self._on) or self._walker.aliveness(physics) < _ALIVE_THRESHOLD

  def get_discount(self, physics):
    return 0.0 if self.should_terminate_episode(physics) else 1.0


class ProprioceptionWrapper(wrappers.EnvironmentWrapper):
  """Concatenates the walker's observations (`walker/...`, sorted) into one `proprioception`."""

  def __init__(self, environment: dm_env.Environment):
    super().__init__(environment)
    spec = environment.observation_spec()
    self._walker_keys = sorted(k for k in spec if k.startswith(_WALKER_PREFIX))
    size = sum(int(np.prod(spec[k].shape)) for k in self._walker_keys)
    self._observation_spec = {
        "proprioception": specs.Array((size,), np.float64, "proprioception"),
        **{k: spec[k] for k in spec if not k.startswith(_WALKER_PREFIX)}}

  def _convert(self, timestep: dm_env.TimeStep) -> dm_env.TimeStep:
    observation = timestep.observation
    parts = [np.ravel(observation[k]) for k in self._walker_keys]
    return timestep._replace(observation={
        "proprioception": np.concatenate(parts),
        **{k: v for k, v in observation.items() if not k.startswith(_WALKER_PREFIX)}})

  def observation_spec(self) -> types.NestedArray:
    return self._observation_spec


def load(tasks: Sequence[str], seed: int) -> dm_env.Environment:
  """The family's environment sampling one of `tasks` per episode."""
  environment = composer.Environment(AntBoxes(tasks, seed), time_limit=_TIME_LIMIT,
                                     random_state=seed, strip_singleton_obs_buffer_dim=True)
  return ProprioceptionWrapper(environment)
