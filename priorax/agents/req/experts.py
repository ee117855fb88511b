"""Suboptimal experts: waypoint-tracking controllers that read the simulator (Jeong et al. 2020, §4).

The paper's experts are "linear feedback on end-effector position and orientation, sequenced with
timeouts": a list of waypoints (above the object, at it, grasp, carry to the goal), each tracked by
feedback on the end effector through MuJoCo's site Jacobian, each left when it is reached or when
its time runs out, whatever happened. Nothing retries: a missed grasp or a dropped object stays a
failure, so the experts succeed sometimes, not always (`benchmarks/req_experts.py` measures how
often).

An expert is a stateful numpy controller `expert(physics) -> action` in the canonical box
[-1, 1]^d, `reset(physics)` at each episode's start. It needs the simulator, which lives with the
environment on the CPU, so `ExpertActionWrapper` runs it there and hands its action to the agent
in the observation (`EXPERT_ACTION_KEY`): the actor executes it when intertwining, the replay
stores it with the state, and the learner regresses the prior on it. The agent's networks do not
read it (`networks.network_observation_keys`).
"""

import abc
import dataclasses
from typing import Callable, Dict, Optional, Sequence, Tuple

from absl import logging as absl_logging
import dm_env
from dm_env import specs
import mujoco
import numpy as np

from priorax.agents.req.config import EXPERT_ACTION_KEY
from priorax.envs import wrappers


def site_jacobian(physics, site: str) -> Tuple[np.ndarray, np.ndarray]:
  """The translational and rotational Jacobians of a site, each [3, nv] (mj_jacSite)."""
  jacp = np.zeros((3, physics.model.nv))
  jacr = np.zeros((3, physics.model.nv))
  mujoco.mj_jacSite(physics.model.ptr, physics.data.ptr, jacp, jacr,
                    physics.model.name2id(site, "site"))
  return jacp, jacr


@dataclasses.dataclass(frozen=True)
class Waypoint:
  """One phase of a scripted motion.

  Attributes:
    name: for logs and tests.
    target: physics -> the end effector's goal position [3].
    grip: the gripper command held during the phase, in [-1, 1] (-1 open, 1 closed).
    tolerance: the phase ends once the end effector is within this distance of its goal
      (None: it runs until its timeout).
    timeout: control steps after which the phase ends regardless.
  """

  name: str
  target: Callable[[object], np.ndarray]
  grip: float
  tolerance: Optional[float]
  timeout: int


class WaypointExpert(abc.ABC):
  """Tracks a sequence of waypoints; the last one is held until the episode ends."""

  def __init__(self, waypoints: Sequence[Waypoint]):
    self._waypoints = tuple(waypoints)
    self._phase = 0
    self._steps_in_phase = 0

  @property
  def phase(self) -> str:
    return self._waypoints[self._phase].name

  def reset(self, physics) -> None:
    del physics
    self._phase = 0
    self._steps_in_phase = 0

  def __call__(self, physics) -> np.ndarray:
    waypoint = self._waypoints[self._phase]
    goal = waypoint.target(physics)
    error = goal - self.end_effector(physics)
    reached = waypoint.tolerance is not None and np.linalg.norm(error) < waypoint.tolerance
    if (reached or self._steps_in_phase >= waypoint.timeout) and \
        self._phase < len(self._waypoints) - 1:
      self._phase += 1
      self._steps_in_phase = 0
      waypoint = self._waypoints[self._phase]
      goal = waypoint.target(physics)
    self._steps_in_phase += 1
    action = self.control(physics, goal, waypoint.grip)
    return np.clip(action, -1.0, 1.0).astype(np.float32)

  @abc.abstractmethod
  def end_effector(self, physics) -> np.ndarray:
    """The tracked point's world position [3]."""

  @abc.abstractmethod
  def control(self, physics, goal: np.ndarray, grip: float) -> np.ndarray:
    """The canonical action that moves the end effector towards `goal` with `grip`."""


class _UnconvergedIKFilter:
  """Drops dm_control's per-call "Failed to converge" IK warning: an unreachable waypoint is an
  expected failure of the expert (its episode fails), not news at every control step."""

  def filter(self, record) -> bool:
    return not (record.pathname.endswith("inverse_kinematics.py")
                and record.getMessage().startswith("Failed to converge"))


_IK_FILTER = _UnconvergedIKFilter()


class BringBallExpert(WaypointExpert):
  """`dmc:manipulator-bring_ball`: pick the ball from above and carry it to the target.

  Each waypoint (a pinch position, the hand pointing straight down) is turned into arm joint
  angles q* by dm_control's inverse kinematics (damped least squares on the pinch site's
  Jacobian, re-solved every `_IK_PERIOD` steps from the current pose), tracked by joint-space PD
  with gravity compensation: τ = k_p (q* − q) − k_d q̇ + bias. The gripper is the `grasp` tendon
  motor (+1 closes). Operational-space control through the Jacobian transpose alone stalled
  against the arm's joint limits in our trials; the IK solution does not respect them either, so
  some waypoints are unreachable: those episodes fail.
  """

  _ARM = ("arm_root", "arm_shoulder", "arm_elbow", "arm_wrist")
  # k_p, k_d, by hand on 8 episodes: (60, 3) and (20, 1) chattered against the torque limits and
  # succeeded in 1 and 0 of them, (8, 0.5) in 2.
  _GAINS = (8.0, 0.5)
  _HOVER = np.array([0.0, 0.0, 0.1])
  _MAX_OFFSET = 0.05
  _DOWN = np.array([0.0, 0.0, 1.0, 0.0])  # The hand's z axis turned to −z (w, x, y, z).
  _IK_PERIOD = 5

  def __init__(self):
    ball = lambda physics: physics.named.data.site_xpos["ball"].copy()
    target = lambda physics: physics.named.data.site_xpos["target_ball"].copy()
    super().__init__([
        Waypoint("above", lambda p: ball(p) + self._HOVER, -1.0, 0.03, 250),
        Waypoint("descend", ball, -1.0, 0.015, 150),
        Waypoint("grasp", ball, 1.0, None, 60),
        Waypoint("lift", lambda p: ball(p) + self._HOVER, 1.0, 0.03, 150),
        Waypoint("carry", lambda p: target(p) + self._held_offset(p), 1.0, None, 10_000),
    ])
    self._joint_targets = None
    self._since_solve = 0
    absl_logging.get_absl_logger().addFilter(_IK_FILTER)  # Adding it again is a no-op.

  def reset(self, physics) -> None:
    super().reset(physics)
    self._joint_targets = None
    self._since_solve = 0

  def end_effector(self, physics) -> np.ndarray:
    return physics.named.data.site_xpos["pinch"].copy()

  def _held_offset(self, physics) -> np.ndarray:
    """Pinch minus ball, bounded to a ball's radius or two: where the pinch goes to put the
    ball it holds on the target (a dropped ball does not send the hand away)."""
    offset = self.end_effector(physics) - physics.named.data.site_xpos["ball"]
    norm = np.linalg.norm(offset)
    return offset if norm <= self._MAX_OFFSET else offset * self._MAX_OFFSET / norm

  def control(self, physics, goal, grip):
    from dm_control.utils import inverse_kinematics  # pylint: disable=g-import-not-at-top
    model = physics.model
    qpos = [model.jnt_qposadr[model.name2id(j, "joint")] for j in self._ARM]
    dofs = [model.jnt_dofadr[model.name2id(j, "joint")] for j in self._ARM]
    if self._joint_targets is None or self._since_solve >= self._IK_PERIOD:
      solution = inverse_kinematics.qpos_from_site_pose(
          physics, "pinch", target_pos=goal, target_quat=self._DOWN,
          joint_names=list(self._ARM), max_steps=50)
      self._joint_targets = solution.qpos[qpos]
      self._since_solve = 0
    self._since_solve += 1
    k_p, k_d = self._GAINS
    # Unlimited joints wrap: steer by the shortest angle.
    error = np.angle(np.exp(1j * (self._joint_targets - physics.data.qpos[qpos])))
    torque = k_p * error - k_d * physics.data.qvel[dofs] + physics.data.qfrc_bias[dofs]
    gear = model.actuator_gear[:len(dofs), 0]
    return np.concatenate([torque / gear, [grip]])


class LiftBrickExpert(WaypointExpert):
  """dm_control.manipulation `lift_brick_features` (Jaco arm): grasp the brick from above, lift it.

  Resolved-rate control of the pinch site: joint velocities q̇ = J⁺ [k_p e; k_r e_R] (damped
  least squares on the 6-D site Jacobian), e the position error and e_R the rotation that turns
  the hand's axis straight down; the actuators are joint-velocity servos, so q̇ is the command.
  The three fingers are velocity servos too (+ closes).
  """

  _GAINS = (4.0, 2.0)  # k_p, k_r.
  _DAMPING = 1e-2
  _HOVER = np.array([0.0, 0.0, 0.12])
  _SITE = "jaco_arm/jaco_hand/pinchsite"
  _BRICK = "duplo2x4/bounding_box"

  def __init__(self):
    brick = lambda physics: physics.named.data.site_xpos[self._BRICK].copy()
    lifted = lambda physics: np.array([*brick(physics)[:2],
                                       physics.named.data.site_xpos["target_height"][2] + 0.02])
    super().__init__([
        Waypoint("above", lambda p: brick(p) + self._HOVER, -1.0, 0.02, 80),
        Waypoint("descend", lambda p: brick(p) + np.array([0.0, 0.0, 0.01]), -1.0, 0.01, 60),
        Waypoint("grasp", lambda p: brick(p) + np.array([0.0, 0.0, 0.01]), 1.0, None, 30),
        Waypoint("lift", lifted, 1.0, None, 10_000),
    ])

  def end_effector(self, physics) -> np.ndarray:
    return physics.named.data.site_xpos[self._SITE].copy()

  def control(self, physics, goal, grip):
    k_p, k_r = self._GAINS
    axis = physics.named.data.site_xmat[self._SITE].reshape(3, 3)[:, 2]
    return self._resolved_rate(physics, k_p * (goal - self.end_effector(physics)),
                               k_r * np.cross(axis, np.array([0.0, 0.0, -1.0])), grip)

  def _resolved_rate(self, physics, velocity: np.ndarray, angular_velocity: np.ndarray,
                     grip: float) -> np.ndarray:
    """The canonical action whose joint velocities move the pinch site with the given linear and
    angular velocity (world frame), by damped least squares on its Jacobian."""
    model = physics.model
    arm = [model.jnt_dofadr[model.actuator_trnid[i, 0]] for i in range(6)]
    jacp, jacr = site_jacobian(physics, self._SITE)
    jacobian = np.concatenate([jacp[:, arm], jacr[:, arm]])
    twist = np.concatenate([velocity, angular_velocity])
    qdot = jacobian.T @ np.linalg.solve(jacobian @ jacobian.T + self._DAMPING * np.eye(6), twist)
    limits = model.actuator_ctrlrange[:6, 1]
    fingers = np.full(3, grip)
    return np.concatenate([qdot / limits, fingers])


def _yaw(physics, site: str) -> float:
  """The heading of a site's x axis in the horizontal plane."""
  x_axis = physics.named.data.site_xmat[site].reshape(3, 3)[:, 0]
  return float(np.arctan2(x_axis[1], x_axis[0]))


def _wrap_half_turn(angle: float) -> float:
  """`angle` in [−π/2, π/2): a 2×4 brick turned by π looks the same to the studs."""
  return (angle + np.pi / 2) % np.pi - np.pi / 2


class StackBricksExpert(LiftBrickExpert):
  """dm_control.manipulation `stack_2_bricks_features`: put the loose brick on the fixed one.

  The same resolved-rate control as `LiftBrickExpert`, with two additions a stack needs: a yaw
  rate that turns the hand to the loose brick before the grasp and the held brick to the base's
  heading (mod π) while carrying, and, from the carry on, levelling of the held brick itself
  rather than of the hand (it tilts in the grasp). The task's reward asks the studs to click into
  the holes (within 1 mm), which the hand cannot do by pressing the brick it holds (it slips in
  the grasp): the brick is aligned to under a millimetre just above the base's studs, dropped, and
  pushed home with the closed hand from above. Pushing often knocks the brick off the studs, or
  does not seat it: the expert succeeds in a minority of episodes (`benchmarks/req_experts.py`).
  """

  _BASE = "duplo2x4/bounding_box"  # Fixed to the table (the stack's first brick).
  _TOP = "duplo2x4_2/bounding_box"  # Loose; `duplo2x4_1`/`_3` are the goal hint's ghosts.
  _STACK_HEIGHT = 0.0192  # Between the centres of two clicked bricks.
  _YAW_GAIN = 2.0
  _ALIGN_GAIN = 12.0  # k_p in the horizontal plane while aligning and pushing.
  _HOLDING = ("carry", "align")

  def __init__(self):  # pylint: disable=super-init-not-called
    top = lambda p: p.named.data.site_xpos[self._TOP].copy()
    base = lambda p: p.named.data.site_xpos[self._BASE].copy()
    up = lambda height: np.array([0.0, 0.0, height])
    over_base = lambda p, height: base(p) + up(height) + self._held_offset(p)
    WaypointExpert.__init__(self, [
        Waypoint("above", lambda p: top(p) + up(0.12), -1.0, 0.02, 80),
        Waypoint("descend", lambda p: top(p) + up(0.01), -1.0, 0.01, 60),
        Waypoint("grasp", lambda p: top(p) + up(0.01), 1.0, None, 30),
        Waypoint("lift", lambda p: np.array([*top(p)[:2], base(p)[2] + 0.1]), 1.0, 0.02, 60),
        Waypoint("carry", lambda p: over_base(p, 0.1), 1.0, 0.01, 100),
        Waypoint("align", lambda p: over_base(p, self._STACK_HEIGHT + 0.01), 1.0, 8e-4, 60),
        Waypoint("drop", lambda p: over_base(p, self._STACK_HEIGHT + 0.01), -1.0, None, 8),
        Waypoint("clear", lambda p: top(p) + up(0.06), -1.0, 0.01, 30),
        Waypoint("fist", lambda p: top(p) + up(0.06), 1.0, None, 10),
        Waypoint("push", top, 1.0, None, 40),
        Waypoint("let_go", top, -1.0, None, 8),
        Waypoint("retreat", lambda p: base(p) + up(0.15), -1.0, None, 10_000),
    ])

  def _held_offset(self, physics) -> np.ndarray:
    """Pinch minus the loose brick's centre: where the pinch goes to put the brick at a goal."""
    return self.end_effector(physics) - physics.named.data.site_xpos[self._TOP]

  def _yaw_error(self, physics) -> float:
    if self.phase in ("above", "descend", "grasp", "lift"):
      return _wrap_half_turn(_yaw(physics, self._TOP) - _yaw(physics, self._SITE))
    return _wrap_half_turn(_yaw(physics, self._BASE) - _yaw(physics, self._TOP))

  def control(self, physics, goal, grip):
    k_p, k_r = self._GAINS
    gains = np.array([k_p, k_p, k_p])
    if self.phase in ("align", "push"):
      gains[:2] = self._ALIGN_GAIN
    if self.phase in self._HOLDING:  # Level the held brick.
      axis, vertical = physics.named.data.site_xmat[self._TOP].reshape(3, 3)[:, 2], 1.0
    else:  # Point the hand straight down.
      axis, vertical = physics.named.data.site_xmat[self._SITE].reshape(3, 3)[:, 2], -1.0
    angular_velocity = (k_r * np.cross(axis, np.array([0.0, 0.0, vertical]))
                        + self._YAW_GAIN * self._yaw_error(physics) * np.array([0.0, 0.0, 1.0]))
    return self._resolved_rate(physics, gains * (goal - self.end_effector(physics)),
                               angular_velocity, grip)


class PointMassExpert(WaypointExpert):
  """`dmc:point_mass-easy`/`-hard`: proportional-derivative control of the mass to the target."""

  _GAINS = (2.0, 0.6)

  def __init__(self):
    target = lambda physics: physics.named.data.geom_xpos["target"].copy()
    super().__init__([Waypoint("reach", target, 0.0, None, 10_000)])

  def end_effector(self, physics) -> np.ndarray:
    return physics.named.data.geom_xpos["pointmass"].copy()

  def control(self, physics, goal, grip):
    del grip
    k_p, k_d = self._GAINS
    velocity = physics.named.data.qvel[["root_x", "root_y"]]
    return k_p * (goal - self.end_effector(physics))[:2] - k_d * velocity


# Expert name -> (factory, the environment names it is made for).
EXPERTS: Dict[str, Tuple[Callable[[], WaypointExpert], Tuple[str, ...]]] = {
    "bring_ball": (BringBallExpert, ("dmc:manipulator-bring_ball",)),
    "lift_brick": (LiftBrickExpert, ("manip:lift_brick_features",)),
    "stack_bricks": (StackBricksExpert, ("manip:stack_2_bricks_features",)),
    "point_mass": (PointMassExpert, ("dmc:point_mass-easy", "dmc:point_mass-hard")),
}


class UnknownExpertError(ValueError):
  """An expert name that does not exist, or an expert asked for on an environment it cannot
  control."""


def make_expert(name: str, environment_name: str) -> WaypointExpert:
  """The expert `name` for the environment `environment_name`."""
  if name not in EXPERTS:
    raise UnknownExpertError(f"unknown expert {name!r}; available experts: "
                             f"{', '.join(sorted(EXPERTS))}")
  factory, environment_names = EXPERTS[name]
  if environment_name not in environment_names:
    raise UnknownExpertError(f"expert {name!r} controls {', '.join(environment_names)}, not "
                             f"{environment_name!r}")
  return factory()


class ExpertActionWrapper(wrappers.EnvironmentWrapper):
  """Adds the expert's action for the current state to every observation (`EXPERT_ACTION_KEY`).

  Wrap the agent-facing environment (canonical actions), whose `physics` the wrappers forward.
  """

  def __init__(self, environment: dm_env.Environment, expert: WaypointExpert):
    super().__init__(environment)
    self._expert = expert
    action_spec = environment.action_spec()
    self._observation_spec = {
        **environment.observation_spec(),
        EXPERT_ACTION_KEY: specs.BoundedArray(action_spec.shape, np.float32, -1.0, 1.0,
                                              EXPERT_ACTION_KEY)}

  def _convert(self, timestep: dm_env.TimeStep) -> dm_env.TimeStep:
    if timestep.first():
      self._expert.reset(self._environment.physics)
    action = self._expert(self._environment.physics)
    return timestep._replace(observation={**timestep.observation, EXPERT_ACTION_KEY: action})

  def observation_spec(self):
    return self._observation_spec
