"""Single-skill tasks on one body for an expert library: the `skill:` prefix.

Neural probabilistic motor primitives (Merel et al. 2019, https://arxiv.org/abs/1811.11711) are
distilled from many experts, each a different way of moving the same body, into one latent space.
The skills of a body therefore share its proprioceptive observation keys (`BODIES[body]
.observation_keys`: the reference states and the decoder's input) and differ only in the reward:

- `skill:<body>-speed_<v>`: move along the track at v m/s (negative: backwards). The reward is the
  suite's standing term times a speed tolerance, as in dm_control's walker-run (Tassa et al. 2018,
  https://arxiv.org/abs/1801.00690): r = stand · (1 + 5·move(v_x)) / 6, where move is 1 within
  ±`_SPEED_BAND`·max(|v|, 1) of v and falls linearly to 0 at max(|v|, 1) from that band (so moving
  at −v earns only the standing share). The cheetah has no standing term: r = move(v_x).
- `skill:<body>-stand`: the same with v = 0, i.e. stand (or, for the cheetah, stay) still.
- `skill:cheetah-flip`: somersault: r = 1 while the torso spins at >= `_FLIP_SPEED` rad/s in the
  positive sense about the lateral axis, falling linearly to 0 at rest.
- `skill:walker-getup`: start lying flat on the floor, reward the suite's standing term.
- `skill:walker-goto_<x>`: a task for reuse that no library skill is: reach x metres along the
  track, r = stand · (1 + 5·near) / 6 with near rising linearly from 0 at the start to 1 within
  0.5 m of the target. The extra observation key `target` (target x minus torso x) is the task
  information that the motor primitives never see.

Each body lists a few speeds (`BodySkills.speeds`); names outside the lists are refused with the
list of valid ones, so a library is always made of listable, reproducible tasks.
"""

import dataclasses
from typing import Callable, Dict, Tuple

import dm_env
import numpy as np
from dm_control.rl import control
from dm_control.suite import cheetah
from dm_control.suite import humanoid
from dm_control.suite import walker
from dm_control.utils import rewards

from priorax.envs import registry

PREFIX = "skill"

# Half-width of the band of full speed reward, as a fraction of max(|v|, 1) m/s.
_SPEED_BAND = 0.1
# The walker lying on its back: torso pitch (rad) and torso height (m) at the start of `getup`.
_LYING_PITCH = np.pi / 2
_LYING_HEIGHT = 0.25
# `flip`: the cheetah's angular speed (rad/s) about its lateral axis that earns the full reward.
_FLIP_SPEED = 5.0
# `goto`: full reward within this distance (m) of the target.
_GOAL_RADIUS = 0.5


def speed_reward(velocity: float, target: float) -> float:
  """move(v_x) ∈ [0, 1]: 1 within the band around `target`, linearly 0 at max(|v|, 1) beyond it."""
  scale = max(abs(target), 1.0)
  band = _SPEED_BAND * scale
  return float(rewards.tolerance(velocity, bounds=(target - band, target + band), margin=scale,
                                 value_at_margin=0.0, sigmoid="linear"))


def _shaped(stand: float, term: float) -> float:
  """stand · (1 + 5·term) / 6: dm_control walker-run's mixing of standing and moving."""
  return stand * (1.0 + 5.0 * term) / 6.0


class WalkerSpeed(walker.PlanarWalker):
  """The planar walker moving at a target speed; v = 0 is standing still."""

  def __init__(self, speed: float, random=None):
    super().__init__(move_speed=0, random=random)  # move_speed=0: the parent rewards standing.
    self._speed = speed

  def get_reward(self, physics):
    return _shaped(super().get_reward(physics),
                   speed_reward(physics.horizontal_velocity(), self._speed))


class WalkerGetUp(walker.PlanarWalker):
  """The planar walker starting on its back on the floor, rewarded for standing up."""

  def __init__(self, random=None):
    super().__init__(move_speed=0, random=random)

  def initialize_episode(self, physics):
    super().initialize_episode(physics)  # Random joint angles, as in the suite.
    side = self.random.choice([-1.0, 1.0])  # On the back or on the front.
    # rootz is the torso's offset from its initial height in the model.
    physics.named.data.qpos["rootz"] = _LYING_HEIGHT - physics.named.model.body_pos["torso", "z"]
    physics.named.data.qpos["rooty"] = side * _LYING_PITCH
    physics.named.data.qvel[:] = 0.0
    physics.after_reset()


class WalkerGoTo(walker.PlanarWalker):
  """The planar walker going to a point on the track; observes `target` (target x − torso x)."""

  def __init__(self, target_x: float, random=None):
    super().__init__(move_speed=0, random=random)
    self._target_x = target_x

  def _to_target(self, physics) -> float:
    return self._target_x - float(physics.named.data.subtree_com["torso", "x"])

  def get_observation(self, physics):
    observation = super().get_observation(physics)
    observation["target"] = np.array([self._to_target(physics)])
    return observation

  def get_reward(self, physics):
    near = rewards.tolerance(self._to_target(physics), bounds=(-_GOAL_RADIUS, _GOAL_RADIUS),
                             margin=max(abs(self._target_x) - _GOAL_RADIUS, 1e-3),
                             value_at_margin=0.0, sigmoid="linear")
    return _shaped(super().get_reward(physics), float(near))


class CheetahSpeed(cheetah.Cheetah):
  """The half-cheetah at a target speed (it cannot fall, so there is no standing term)."""

  def __init__(self, speed: float, random=None):
    super().__init__(random=random)
    self._speed = speed

  def get_reward(self, physics):
    return speed_reward(physics.speed(), self._speed)


class CheetahFlip(cheetah.Cheetah):
  """The half-cheetah spinning about its lateral (y) axis."""

  def get_reward(self, physics):
    return float(rewards.tolerance(physics.named.data.qvel["rooty"],
                                   bounds=(_FLIP_SPEED, float("inf")), margin=_FLIP_SPEED,
                                   value_at_margin=0, sigmoid="linear"))


class HumanoidSpeed(humanoid.Humanoid):
  """The suite's humanoid moving along the world x axis at a target speed.

  The suite's standing, upright and small-control terms (humanoid.py) times the speed tolerance
  on the centre of mass's x velocity; the lateral velocity is not rewarded.
  """

  def __init__(self, speed: float, random=None):
    super().__init__(move_speed=0, pure_state=False, random=random)
    self._speed = speed

  def get_reward(self, physics):
    stand_height = humanoid._STAND_HEIGHT  # pylint: disable=protected-access
    standing = rewards.tolerance(physics.head_height(), bounds=(stand_height, float("inf")),
                                 margin=stand_height / 4)
    upright = rewards.tolerance(physics.torso_upright(), bounds=(0.9, float("inf")),
                                sigmoid="linear", margin=1.9, value_at_margin=0)
    small_control = rewards.tolerance(physics.control(), margin=1, value_at_margin=0,
                                      sigmoid="quadratic").mean()
    small_control = (4 + small_control) / 5
    move = speed_reward(physics.center_of_mass_velocity()[0], self._speed)
    return small_control * _shaped(standing * upright, move)


def _speed_name(speed: float) -> str:
  return "stand" if speed == 0 else f"speed_{speed:g}"


@dataclasses.dataclass(frozen=True)
class BodySkills:
  """The skills of one body.

  Attributes:
    observation_keys: the proprioceptive keys every skill of the body observes.
    speeds: the target speeds (m/s) of `speed_<v>`; 0 is `stand`.
    tasks: other skills, name -> (random) -> task.
    make_speed: (speed, random) -> task.
    physics: the body's physics class and its model loader.
    time_limit: episode length in seconds; control_timestep: seconds per agent step.
  """
  observation_keys: Tuple[str, ...]
  speeds: Tuple[float, ...]
  tasks: Dict[str, Callable]
  make_speed: Callable
  physics: Callable
  time_limit: float
  control_timestep: float

  def names(self) -> Tuple[str, ...]:
    return tuple(_speed_name(v) for v in self.speeds) + tuple(self.tasks)

  def make_task(self, skill: str, random):
    for speed in self.speeds:
      if skill == _speed_name(speed):
        return self.make_speed(speed, random)
    return self.tasks[skill](random)


_GOTO_TARGETS = (-3.0, 3.0, 6.0)

BODIES: Dict[str, BodySkills] = {
    "walker": BodySkills(
        observation_keys=("height", "orientations", "velocity"),
        speeds=(-2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0),
        tasks={"getup": lambda random: WalkerGetUp(random=random),
               **{f"goto_{x:g}": (lambda random, x=x: WalkerGoTo(x, random=random))
                  for x in _GOTO_TARGETS}},
        make_speed=lambda speed, random: WalkerSpeed(speed, random=random),
        physics=lambda: walker.Physics.from_xml_string(*walker.get_model_and_assets()),
        time_limit=walker._DEFAULT_TIME_LIMIT,  # pylint: disable=protected-access
        control_timestep=walker._CONTROL_TIMESTEP),  # pylint: disable=protected-access
    "cheetah": BodySkills(
        observation_keys=("position", "velocity"),
        speeds=(-4.0, -2.0, -1.0, 0.0, 1.0, 2.0, 3.0, 4.0, 6.0, 8.0),
        tasks={"flip": lambda random: CheetahFlip(random=random)},
        make_speed=lambda speed, random: CheetahSpeed(speed, random=random),
        physics=lambda: cheetah.Physics.from_xml_string(*cheetah.get_model_and_assets()),
        time_limit=cheetah._DEFAULT_TIME_LIMIT,  # pylint: disable=protected-access
        control_timestep=None),
    "humanoid": BodySkills(
        observation_keys=("com_velocity", "extremities", "head_height", "joint_angles",
                          "torso_vertical", "velocity"),
        speeds=(-1.0, 0.0, 0.5, 1.0, 2.0, 3.0),
        tasks={},
        make_speed=lambda speed, random: HumanoidSpeed(speed, random=random),
        physics=lambda: humanoid.Physics.from_xml_string(*humanoid.get_model_and_assets()),
        time_limit=humanoid._DEFAULT_TIME_LIMIT,  # pylint: disable=protected-access
        control_timestep=humanoid._CONTROL_TIMESTEP),  # pylint: disable=protected-access
}


def environment_name(body: str, skill: str) -> str:
  """The registry name of a skill, e.g. ("walker", "speed_1") -> "skill:walker-speed_1"."""
  return f"{PREFIX}:{body}-{skill}"


def list_names() -> list[str]:
  """Every skill of every body."""
  return [environment_name(body, skill) for body, skills in BODIES.items()
          for skill in skills.names()]


def parse_name(name: str) -> Tuple[str, str]:
  """"skill:<body>-<skill>" -> a known (body, skill); UnknownEnvironmentError otherwise."""
  rest = name.removeprefix(f"{PREFIX}:")
  body, separator, skill = rest.partition("-")
  if rest == name or not separator:
    raise registry.unknown_environment_error("Expected 'skill:<body>-<skill>'", name, list_names())
  if body not in BODIES:
    raise registry.unknown_environment_error(f"Unknown body {body!r}", name, list_names())
  if skill not in BODIES[body].names():
    raise registry.unknown_environment_error(f"Unknown skill {skill!r} of body {body!r}", name,
                                             list_names())
  return body, skill


def load(name: str, seed: int) -> dm_env.Environment:
  """Builds the skill `name` with the body's suite time limit and control step, seeded."""
  body, skill = parse_name(name)
  skills = BODIES[body]
  kwargs = {} if skills.control_timestep is None else {"control_timestep": skills.control_timestep}
  return control.Environment(skills.physics(), skills.make_task(skill, seed),
                             time_limit=skills.time_limit, **kwargs)
