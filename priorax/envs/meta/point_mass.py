"""Point-mass task distributions of Humplik et al. 2019 ("Meta reinforcement learning as task
inference", https://arxiv.org/abs/1905.06424, §5): goal reaching on a semicircle and Numpad.

Both share one MuJoCo arena: a sphere on two damped slide joints (x, y) inside a square whose edges
are the joints' limits, pushed by one motor per axis (force = control ∈ [-1, 1] N). With damping
b = 1 N·s/m and mass 0.2 kg the mass settles at ≈ 1 m/s within ≈ 0.5 s under full force, so
crossing the arena takes about a second. Contacts are disabled (nothing collides), which keeps a
step to a handful of microseconds.

Each episode samples a task from the task's RandomState (seeded by the environment seed), keeps it
for the whole episode and exposes it as the observation `task`, which the policy is not meant to
see (drop it with `make_environment(..., observation_keys=...)`); belief modules and critics may.
"""

import collections

from dm_control import mujoco
from dm_control.rl import control
from dm_control.suite import base
from dm_control.suite import common
import numpy as np

# Seconds per agent step: 5 physics steps of 0.01 s.
CONTROL_TIMESTEP = 0.05
_PHYSICS_TIMESTEP = 0.01
_MASS_RADIUS = 0.04

_ARENA_XML = """
<mujoco model="meta-RL point mass arena">
  <include file="./common/skybox.xml"/>
  <include file="./common/visual.xml"/>
  <include file="./common/materials.xml"/>
  <option timestep="{timestep}"><flag contact="disable"/></option>
  <default>
    <joint type="slide" limited="true" range="-{limit} {limit}" damping="1"/>
    <motor gear="1" ctrlrange="-1 1" ctrllimited="true"/>
  </default>
  <worldbody>
    <light name="light" pos="0 0 2"/>
    <camera name="top" pos="0 0 {camera_height}" quat="1 0 0 0"/>
    <geom name="floor" type="plane" size="{half_size} {half_size} .1" material="grid"/>
    {decorations}
    <body name="mass" pos="0 0 {radius}">
      <joint name="x" axis="1 0 0"/>
      <joint name="y" axis="0 1 0"/>
      <geom name="mass" type="sphere" size="{radius}" material="self" mass="0.2"/>
    </body>
  </worldbody>
  <actuator>
    <motor name="x" joint="x"/>
    <motor name="y" joint="y"/>
  </actuator>
</mujoco>
"""


def _make_physics(half_size: float, decorations: str) -> mujoco.Physics:
  """The arena of half-width `half_size` with extra (non-colliding) `decorations` MJCF."""
  xml = _ARENA_XML.format(
      timestep=_PHYSICS_TIMESTEP, limit=half_size - _MASS_RADIUS, half_size=half_size,
      camera_height=2.5 * half_size, radius=_MASS_RADIUS, decorations=decorations)
  return mujoco.Physics.from_xml_string(xml, common.ASSETS)


def _make_environment(task: base.Task, *, half_size: float, decorations: str,
                      num_steps: int) -> control.Environment:
  """`task` in the arena `_make_physics(half_size, decorations)`, `num_steps` agent steps long."""
  return control.Environment(
      _make_physics(half_size, decorations), task, control_timestep=CONTROL_TIMESTEP,
      time_limit=time_limit(num_steps, CONTROL_TIMESTEP))


def time_limit(num_steps: int, control_timestep: float) -> float:
  """A time limit that ends the episode after exactly `num_steps` agent steps.

  dm_control ends an episode once step_count ≥ time_limit / control_timestep; half a step of slack
  keeps a float quotient such as 120.00000000000001 from adding a step.
  """
  return (num_steps - 0.5) * control_timestep


def _set_mass(physics: mujoco.Physics, position: np.ndarray) -> None:
  """Puts the mass at rest at `position` (x, y)."""
  physics.data.qpos[:] = position
  physics.data.qvel[:] = 0.0
  physics.forward()


def _mass_observation(physics: mujoco.Physics) -> collections.OrderedDict:
  observation = collections.OrderedDict()
  observation["position"] = physics.data.qpos.copy()
  observation["velocity"] = physics.data.qvel.copy()
  return observation


class PointGoal(base.Task):
  """Reach a hidden goal on a semicircle; several trials per episode share the goal.

  The goal g = ρ(cos θ, sin θ), θ ~ U[0, π], is drawn once per episode. Each trial starts with the
  mass at rest near the origin and lasts `trial_steps` agent steps; the reward is sparse,
  r = 1 if ‖x − g‖ ≤ goal_radius else 0. After the last step of a trial (except the episode's last)
  the mass is put back at the start, so an agent that has found the goal in one trial can go
  straight to it in the next: the per-trial return rises with inference, not with luck.
  Observations: position, velocity (2 each) and task = g.
  """

  def __init__(self, *, radius: float = 0.6, goal_radius: float = 0.15, num_trials: int = 3,
               trial_steps: int = 40, start_noise: float = 0.02, random=None):
    if not 0 < goal_radius < radius:
      raise ValueError(f"need 0 < goal_radius < radius: got goal_radius={goal_radius}, "
                       f"radius={radius}.")
    if num_trials < 1 or trial_steps < 1:
      raise ValueError(f"num_trials and trial_steps must be >= 1: got {num_trials}, {trial_steps}.")
    self.radius = radius
    self.goal_radius = goal_radius
    self.num_trials = num_trials
    self.trial_steps = trial_steps
    self._start_noise = start_noise
    self.goal = np.zeros(2)
    self._steps = 0
    self._reward = 0.0
    super().__init__(random=random)

  def _start_trial(self, physics: mujoco.Physics) -> None:
    _set_mass(physics, self.random.uniform(-self._start_noise, self._start_noise, size=2))

  def initialize_episode(self, physics: mujoco.Physics) -> None:
    angle = self.random.uniform(0.0, np.pi)
    self.goal = self.radius * np.array([np.cos(angle), np.sin(angle)])
    physics.named.model.site_pos["goal", :2] = self.goal
    self._start_trial(physics)
    super().initialize_episode(physics)
    # After the base class, whose initialize_episode calls after_step once.
    self._steps = 0
    self._reward = 0.0

  def after_step(self, physics: mujoco.Physics) -> None:
    # The reward is read before a trial's reset moves the mass away from where it ended.
    distance = np.linalg.norm(physics.data.qpos - self.goal)
    self._reward = float(distance <= self.goal_radius)
    self._steps += 1
    if self._steps % self.trial_steps == 0 and self._steps < self.num_trials * self.trial_steps:
      self._start_trial(physics)

  def get_observation(self, physics: mujoco.Physics) -> collections.OrderedDict:
    observation = _mass_observation(physics)
    observation["task"] = self.goal.copy()
    return observation

  def get_reward(self, physics: mujoco.Physics) -> float:
    del physics
    return self._reward


def point_goal(seed: int) -> control.Environment:
  """`meta:point_goal`: 3 trials of 40 steps (2 s each) in a 1.6 m square arena."""
  task = PointGoal(random=seed)
  goal_site = (f'<site name="goal" type="cylinder" size="{task.goal_radius} .002" '
               'material="target" pos="0 0 .002"/>')
  return _make_environment(task, half_size=0.8, decorations=goal_site,
                           num_steps=task.num_trials * task.trial_steps)


def check_sequence_length(size: int, length: int) -> None:
  """Raises ValueError unless 1 ≤ length ≤ size² (a sequence visits distinct tiles)."""
  if not 1 <= length <= size * size:
    raise ValueError(f"sequence length must be in [1, {size * size}] for a {size}x{size} pad: "
                     f"got {length}.")


def sample_tile_sequence(size: int, length: int, random: np.random.RandomState) -> np.ndarray:
  """A random path of `length` distinct tiles of a size × size pad, each next to the previous.

  Tiles are numbered row-major (tile i sits at row i // size, column i % size); consecutive tiles
  share an edge, so the mass can roll from one to the next without touching another. The path is
  a random walk onto unvisited tiles, restarted when it runs into a dead end (grid graphs have a
  Hamiltonian path, so every length ≤ size² is reachable).
  """
  check_sequence_length(size, length)
  while True:
    path = [int(random.randint(size * size))]
    while len(path) < length:
      row, column = divmod(path[-1], size)
      neighbours = [r * size + c for r, c in ((row - 1, column), (row + 1, column),
                                              (row, column - 1), (row, column + 1))
                    if 0 <= r < size and 0 <= c < size and r * size + c not in path]
      if not neighbours:
        break
      path.append(int(neighbours[random.randint(len(neighbours))]))
    if len(path) == length:
      return np.array(path)


class Numpad(base.Task):
  """Press a hidden sequence of tiles in order (Humplik et al. 2019, §5; after `numpad-gym`).

  A size × size pad of square tiles (separated by a gap that presses nothing) lies in the arena.
  Each episode draws a sequence s of `sequence_length` distinct, edge-adjacent tiles. The mass
  presses a tile when its centre enters the tile. With progress p (tiles of s pressed in order):
    - pressing s[p] is correct: p ← p + 1 and r = 1;
    - pressing any other tile is wrong: p ← 0 and r = 0;
    - re-entering the tile pressed last presses nothing (so that jitter across its edge is
      neither a reward nor a reset) *(choose)*;
    - after the whole sequence (p = len(s)), the next press starts over: s[0] is correct, any
      other tile wrong; so the sequence can be run again for more reward.
  Tiles s[:p] are lit; the lights are observed (the progress is not hidden, the sequence is).
  Observations: position, velocity (2 each), lights (size²: 1 if lit) and task (len(s), size²:
  row k one-hot of s[k]).
  """

  def __init__(self, *, size: int = 3, sequence_length: int = 4, tile_pitch: float = 0.25,
               tile_gap: float = 0.03, random=None):
    if size < 1:
      raise ValueError(f"size must be >= 1: got {size}.")
    if not 0 <= tile_gap < tile_pitch:
      raise ValueError(f"need 0 <= tile_gap < tile_pitch: got {tile_gap}, {tile_pitch}.")
    check_sequence_length(size, sequence_length)
    self.size = size
    self.sequence_length = sequence_length
    self.tile_pitch = tile_pitch
    self.tile_half_width = (tile_pitch - tile_gap) / 2
    # Tile centres, row-major, the pad centred on the origin.
    offsets = (np.arange(size) - (size - 1) / 2) * tile_pitch
    self.tile_centres = np.array([(x, -y) for y in offsets for x in offsets])
    self.sequence = np.zeros(sequence_length, int)
    self.progress = 0
    self._last_pressed = None
    self._tile_under = None
    self._reward = 0.0
    super().__init__(random=random)

  def tile_at(self, position: np.ndarray) -> int | None:
    """The tile whose square contains `position`, None over a gap or outside the pad."""
    inside = np.all(np.abs(self.tile_centres - position) <= self.tile_half_width, axis=1)
    tiles = np.flatnonzero(inside)
    return int(tiles[0]) if tiles.size else None

  def press(self, tile: int) -> float:
    """Applies a press of `tile` to the progress; returns its reward."""
    if tile == self._last_pressed:
      return 0.0
    self._last_pressed = tile
    if self.progress == self.sequence_length:
      self.progress = 0
    if tile == self.sequence[self.progress]:
      self.progress += 1
      return 1.0
    self.progress = 0
    return 0.0

  def lights(self) -> np.ndarray:
    lights = np.zeros(self.size * self.size)
    lights[self.sequence[:self.progress]] = 1.0
    return lights

  def _show_lights(self, physics: mujoco.Physics) -> None:
    # Only for rendering: lit tiles are drawn brighter.
    for tile, lit in enumerate(self.lights()):
      physics.named.model.geom_rgba[f"tile_{tile}"] = (0.9, 0.8, 0.2, 1) if lit else (.3, .3, .5, 1)

  def initialize_episode(self, physics: mujoco.Physics) -> None:
    self.sequence = sample_tile_sequence(self.size, self.sequence_length, self.random)
    pad_half_width = self.size * self.tile_pitch / 2
    _set_mass(physics, self.random.uniform(-pad_half_width, pad_half_width, size=2))
    super().initialize_episode(physics)
    # After the base class, whose initialize_episode calls after_step once. A tile under the
    # starting mass is not pressed: pressing needs entering.
    self.progress = 0
    self._last_pressed = None
    self._tile_under = self.tile_at(physics.data.qpos)
    self._reward = 0.0
    self._show_lights(physics)

  def after_step(self, physics: mujoco.Physics) -> None:
    tile = self.tile_at(physics.data.qpos)
    entered = tile is not None and tile != self._tile_under
    self._tile_under = tile
    self._reward = self.press(tile) if entered else 0.0
    self._show_lights(physics)

  def get_observation(self, physics: mujoco.Physics) -> collections.OrderedDict:
    observation = _mass_observation(physics)
    observation["lights"] = self.lights()
    task = np.zeros((self.sequence_length, self.size * self.size))
    task[np.arange(self.sequence_length), self.sequence] = 1.0
    observation["task"] = task
    return observation

  def get_reward(self, physics: mujoco.Physics) -> float:
    del physics
    return self._reward


def numpad(seed: int) -> control.Environment:
  """`meta:numpad`: a 3×3 pad, sequences of 4 tiles, 200 steps (10 s)."""
  task = Numpad(random=seed)
  tiles = "".join(
      f'<geom name="tile_{i}" type="box" pos="{x} {y} .001" '
      f'size="{task.tile_half_width} {task.tile_half_width} .001"/>'
      for i, (x, y) in enumerate(task.tile_centres))
  return _make_environment(task, half_size=0.5, decorations=tiles, num_steps=200)
