"""The `meta:` task distributions: hidden tasks resampled per episode and kept within it, the
`task` observation, exact episode lengths, and each task's reward rule."""

import numpy as np
import pytest

from priorax import envs
from priorax.envs import meta
from priorax.envs.meta import point_mass

NAMES = ["meta:point_goal", "meta:numpad", "meta:cheetah_velocity", "meta:walker_heading"]
EPISODE_LENGTHS = {"meta:point_goal": 120, "meta:numpad": 200, "meta:cheetah_velocity": 500,
                   "meta:walker_heading": 400}


def _random_actions(environment, seed=0):
  random = np.random.RandomState(seed)
  shape = environment.action_spec().shape
  return lambda: random.uniform(-1.0, 1.0, shape).astype(np.float32)


def _drive_to(environment, observation, target, *, max_steps=60, tolerance=0.01):
  """Steers the point mass to `target` with a PD controller; returns the timesteps."""
  timesteps = []
  for _ in range(max_steps):
    error = target - observation["position"]
    if np.linalg.norm(error) < tolerance and np.linalg.norm(observation["velocity"]) < 0.05:
      break
    action = np.clip(8.0 * error - 1.0 * observation["velocity"], -1.0, 1.0).astype(np.float32)
    timestep = environment.step(action)
    timesteps.append(timestep)
    observation = timestep.observation
  return timesteps


def test_every_meta_task_is_listed_and_bad_names_are_explained():
  assert set(NAMES) == set(meta.list_names())
  assert set(NAMES) <= set(envs.list_environments())
  with pytest.raises(envs.UnknownEnvironmentError,
                     match=r"Unknown meta task 'numpd'.*closest first\): meta:numpad"):
    envs.make_environment("meta:numpd", seed=0)


@pytest.mark.parametrize("name", NAMES)
def test_task_is_resampled_each_episode_and_kept_within_it(name):
  environment = envs.make_environment(name, seed=3)
  act = _random_actions(environment)
  descriptors = []
  for episode in range(6):
    timestep = environment.reset()
    descriptor = timestep.observation["task"]
    descriptors.append(descriptor)
    steps = 0
    # The first episode runs to its end (its exact length is checked); the others briefly.
    while not timestep.last() and (episode == 0 or steps < 20):
      timestep = environment.step(act())
      steps += 1
      np.testing.assert_array_equal(timestep.observation["task"], descriptor)
    if episode == 0:
      assert steps == EPISODE_LENGTHS[name]
      assert timestep.discount == 1.0  # A time limit: the value still bootstraps.
  assert len({d.tobytes() for d in descriptors}) >= 2


@pytest.mark.parametrize("name", NAMES)
def test_the_seed_fixes_the_sequence_of_tasks(name):

  def descriptors(seed):
    environment = envs.make_environment(name, seed=seed)
    return np.stack([environment.reset().observation["task"] for _ in range(4)])

  np.testing.assert_array_equal(descriptors(3), descriptors(3))
  assert not np.array_equal(descriptors(3), descriptors(4))


@pytest.mark.parametrize("name", NAMES)
def test_task_key_can_be_dropped(name):
  keys = [key for key in envs.make_environment(name, seed=0).observation_spec() if key != "task"]
  environment = envs.make_environment(name, seed=0, observation_keys=keys)
  assert list(environment.observation_spec()) == keys
  assert "task" not in environment.reset().observation


class TestPointGoal:

  def test_reward_only_inside_the_goal_radius_and_later_trials_keep_the_goal(self):
    environment = envs.make_environment("meta:point_goal", seed=0)
    task = environment.task
    observation = environment.reset().observation
    goal = observation["task"].copy()
    np.testing.assert_allclose(np.linalg.norm(goal), task.radius, rtol=1e-6)
    assert goal[1] >= 0.0  # The upper semicircle.
    trial_returns = []
    for trial in range(task.num_trials):
      assert np.linalg.norm(observation["position"]) < 0.05  # Each trial starts at the origin.
      # Far from the goal first (the mirror image of the goal), then onto it.
      timesteps = _drive_to(environment, observation, -goal, max_steps=8)
      timesteps += _drive_to(environment, timesteps[-1].observation, goal, max_steps=30)
      assert len(timesteps) < task.trial_steps
      timesteps += [environment.step(np.zeros(2, np.float32))
                    for _ in range(task.trial_steps - len(timesteps))]
      # The last step of the trial ends on the goal; its observation shows the next trial's start.
      for timestep in timesteps[:-1]:
        inside = np.linalg.norm(timestep.observation["position"] - goal) <= task.goal_radius
        assert timestep.reward == float(inside)
        np.testing.assert_array_equal(timestep.observation["task"], goal)
      assert timesteps[-1].reward == 1.0
      assert {float(t.reward) for t in timesteps} == {0.0, 1.0}
      trial_returns.append(sum(float(t.reward) for t in timesteps))
      observation = timesteps[-1].observation
    assert timesteps[-1].last()
    assert min(trial_returns) > 0

  def test_bad_radii_are_rejected(self):
    with pytest.raises(ValueError, match="goal_radius=0.7, radius=0.6"):
      point_mass.PointGoal(goal_radius=0.7)


class TestNumpad:

  @pytest.fixture
  def task(self):
    task = point_mass.Numpad(size=3, sequence_length=3, random=0)
    task.sequence = np.array([4, 5, 2])  # Centre, right of it, above that.
    return task

  def test_correct_presses_are_rewarded_and_a_wrong_one_resets(self, task):
    assert [task.press(4), task.press(5)] == [1.0, 1.0]
    assert task.progress == 2
    np.testing.assert_array_equal(np.flatnonzero(task.lights()), [4, 5])
    assert task.press(8) == 0.0  # Wrong: progress and lights reset.
    assert task.progress == 0 and not task.lights().any()
    assert task.press(5) == 0.0  # s[1] is wrong again from the start.
    assert [task.press(4), task.press(5), task.press(2)] == [1.0, 1.0, 1.0]
    assert task.progress == 3

  def test_reentering_the_last_tile_presses_nothing(self, task):
    assert task.press(4) == 1.0
    assert task.press(4) == 0.0 and task.progress == 1

  def test_a_completed_sequence_can_be_run_again(self, task):
    assert [task.press(t) for t in (4, 5, 2)] == [1.0, 1.0, 1.0]
    assert [task.press(t) for t in (4, 5, 2)] == [1.0, 1.0, 1.0]
    assert [task.press(t) for t in (4, 1)] == [1.0, 0.0]
    assert task.progress == 0

  @pytest.mark.parametrize("size, length", [(3, 4), (3, 9), (4, 7), (2, 4), (1, 1)])
  def test_sequences_are_distinct_adjacent_tiles(self, size, length):
    random = np.random.RandomState(0)
    for _ in range(20):
      sequence = point_mass.sample_tile_sequence(size, length, random)
      assert len(set(sequence.tolist())) == length
      rows, columns = np.divmod(sequence, size)
      np.testing.assert_array_equal(np.abs(np.diff(rows)) + np.abs(np.diff(columns)), 1)

  def test_bad_sequence_length_is_rejected(self):
    with pytest.raises(ValueError, match=r"sequence length must be in \[1, 9\].*got 10"):
      point_mass.Numpad(size=3, sequence_length=10)

  def test_rolling_over_the_sequence_collects_its_reward(self):
    environment = envs.make_environment("meta:numpad", seed=1)
    task = environment.task
    observation = environment.reset().observation
    sequence = np.argmax(observation["task"], axis=1)
    # Off the pad first, so the first tile is entered whatever the start.
    timesteps = _drive_to(environment, observation, np.array([0.45, 0.45]))
    for k, tile in enumerate(sequence):
      timesteps = _drive_to(environment, timesteps[-1].observation, task.tile_centres[tile])
      assert sum(t.reward for t in timesteps) == 1.0  # Edge-adjacent: no other tile on the way.
      np.testing.assert_array_equal(np.flatnonzero(timesteps[-1].observation["lights"]),
                                    np.sort(sequence[:k + 1]))
    wrong = next(t for t in range(9) if t not in sequence)
    timesteps = _drive_to(environment, timesteps[-1].observation, task.tile_centres[wrong])
    assert not timesteps[-1].observation["lights"].any()


def test_cheetah_reward_peaks_at_the_hidden_velocity():
  environment = envs.make_environment("meta:cheetah_velocity", seed=0)
  task = environment.task
  target = environment.reset().observation["task"][0]
  assert task.min_velocity <= target <= task.max_velocity
  act = _random_actions(environment)
  for _ in range(30):
    timestep = environment.step(act())
    speed = environment.physics.speed()
    expected = max(0.0, 1.0 - abs(speed - target) / task.max_velocity)
    np.testing.assert_allclose(timestep.reward, expected, rtol=1e-5, atol=1e-6)


def test_walker_is_rewarded_only_standing_at_the_hidden_target():
  environment = envs.make_environment("meta:walker_heading", seed=0)
  task, physics = environment.task, environment.physics
  timestep = environment.reset()
  target = task.targets[np.argmax(timestep.observation["task"])]
  assert timestep.observation["position"][0] == pytest.approx(0.0, abs=1e-6)

  def reward_at(x, z=0.0):
    with physics.reset_context():
      physics.data.qpos[:] = 0.0  # Upright, standing (torso 1.3 m high).
      physics.named.data.qpos["rootx"] = x
      physics.named.data.qpos["rootz"] = z
    return task.get_reward(physics)

  assert reward_at(target) == 1.0
  assert reward_at(target + 0.9 * task.target_radius) == 1.0
  assert reward_at(target + 1.1 * task.target_radius) == 0.0
  assert reward_at(0.0) == 0.0
  assert reward_at(target, z=-1.0) == 0.0  # Lying on the target.
  for other in task.targets[task.targets != target]:
    assert reward_at(other) == 0.0


def test_cli_lists_the_meta_tasks(capsys):
  from priorax.launchers import cli  # pylint: disable=import-outside-toplevel
  assert cli.main(["list", "envs"]) == 0
  assert set(NAMES) <= set(capsys.readouterr().out.split())
