"""Locomotion task distributions of the kind used by Humplik et al. 2019 ("Meta reinforcement
learning as task inference", https://arxiv.org/abs/1905.06424, §5), on dm_control suite bodies.

- Cheetah velocity: run at a hidden target velocity (dense reward).
- Walker heading: walk to a hidden target among a fixed set on the track, in either heading
  (sparse reward), so the agent must explore one way and turn back when it finds nothing.

As in `point_mass`, each episode samples a task from the task's RandomState, keeps it for the whole
episode and exposes it as the observation `task`.
"""

import collections
from typing import Sequence

from dm_control.rl import control
from dm_control.suite import cheetah
from dm_control.suite import walker
from dm_control.utils import rewards
import numpy as np

from priorax.envs.meta import point_mass


class CheetahVelocity(cheetah.Cheetah):
  """The suite's cheetah, rewarded for running at a hidden velocity v* ~ U[min, max] (m/s).

  r = max(0, 1 − |v − v*| / margin) with margin = max_velocity: dense, 1 exactly at v*, and
  positive for every speed between standing still and 2·max (dm_control's linear `tolerance`).
  Observations: the suite's position and velocity, and task = [v*].
  """

  def __init__(self, *, min_velocity: float = 0.5, max_velocity: float = 3.0, random=None):
    if not 0 <= min_velocity < max_velocity:
      raise ValueError(f"need 0 <= min_velocity < max_velocity: got {min_velocity}, "
                       f"{max_velocity}.")
    self.min_velocity = min_velocity
    self.max_velocity = max_velocity
    self.target_velocity = min_velocity
    super().__init__(random=random)

  def initialize_episode(self, physics: cheetah.Physics) -> None:
    self.target_velocity = self.random.uniform(self.min_velocity, self.max_velocity)
    super().initialize_episode(physics)

  def get_observation(self, physics: cheetah.Physics) -> collections.OrderedDict:
    observation = super().get_observation(physics)
    observation["task"] = np.array([self.target_velocity])
    return observation

  def get_reward(self, physics: cheetah.Physics) -> float:
    return float(rewards.tolerance(
        physics.speed(), bounds=(self.target_velocity, self.target_velocity),
        margin=self.max_velocity, value_at_margin=0.0, sigmoid="linear"))


def cheetah_velocity(seed: int) -> control.Environment:
  """`meta:cheetah_velocity`: v* ~ U[0.5, 3] m/s, 500 steps of 0.01 s."""
  physics = cheetah.Physics.from_xml_string(*cheetah.get_model_and_assets())
  task = CheetahVelocity(random=seed)
  return control.Environment(
      physics, task, time_limit=point_mass.time_limit(500, physics.timestep()))


class WalkerHeading(walker.PlanarWalker):
  """The suite's planar walker, rewarded only near a hidden target x* drawn from `targets`.

  r = 1 if |x_torso − x*| ≤ target_radius and the torso is at least `min_height` high (standing,
  not lying on the target), else 0. The walker starts at x = 0, so the sign of x* is the heading.
  Observations: the suite's orientations, height and velocity, position = [x_torso] (the suite's
  observations are egocentric; finding a place needs it), and task = one-hot of x* in `targets`.
  """

  def __init__(self, *, targets: Sequence[float] = (-3.0, -1.5, 1.5, 3.0),
               target_radius: float = 0.5, min_height: float = 0.9, random=None):
    if len(targets) < 2:
      raise ValueError(f"need at least two targets to hide one: got {targets!r}.")
    self.targets = np.asarray(targets, float)
    self.target_radius = target_radius
    self.min_height = min_height
    self.target_index = 0
    super().__init__(move_speed=0.0, random=random)

  def initialize_episode(self, physics: walker.Physics) -> None:
    self.target_index = int(self.random.randint(len(self.targets)))
    super().initialize_episode(physics)

  def get_observation(self, physics: walker.Physics) -> collections.OrderedDict:
    observation = super().get_observation(physics)
    observation["position"] = np.array([physics.named.data.xpos["torso", "x"]])
    observation["task"] = np.eye(len(self.targets))[self.target_index]
    return observation

  def get_reward(self, physics: walker.Physics) -> float:
    distance = abs(physics.named.data.xpos["torso", "x"] - self.targets[self.target_index])
    return float(distance <= self.target_radius and physics.torso_height() >= self.min_height)


# The suite's walker floor starts at x = −2 (it is laid out for walking forwards); centred here so
# that targets behind the start are on the floor.
_SUITE_WALKER_FLOOR = 'pos="248 0 0" size="250 .8 .2"'
_CENTRED_WALKER_FLOOR = 'pos="0 0 0" size="250 .8 .2"'
# Seconds per agent step, as in the suite's walker tasks.
_WALKER_CONTROL_TIMESTEP = 0.025


def walker_heading(seed: int) -> control.Environment:
  """`meta:walker_heading`: targets x* ∈ {±1.5, ±3} m, 400 steps of 0.025 s."""
  xml, assets = walker.get_model_and_assets()
  xml = xml.decode() if isinstance(xml, bytes) else xml
  if _SUITE_WALKER_FLOOR not in xml:
    raise RuntimeError("dm_control's walker.xml changed: its floor is no longer "
                       f"{_SUITE_WALKER_FLOOR!r}; update priorax.envs.meta.locomotion.")
  physics = walker.Physics.from_xml_string(
      xml.replace(_SUITE_WALKER_FLOOR, _CENTRED_WALKER_FLOOR), assets)
  task = WalkerHeading(random=seed)
  return control.Environment(
      physics, task, control_timestep=_WALKER_CONTROL_TIMESTEP,
      time_limit=point_mass.time_limit(400, _WALKER_CONTROL_TIMESTEP))
