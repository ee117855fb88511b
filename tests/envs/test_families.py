"""Task families (`family:`): names, per-episode task sampling, held-out tasks, explicit task keys,
and the predicate rewards of the Ant family."""

from dm_control import suite
import jax
import numpy as np
import pytest

from priorax import envs
from priorax import priors
from priorax.envs import ant_boxes
from priorax.envs import families
from priorax.networks import distributions


def _target_angle(environment):
  x, y = environment.physics.named.model.geom_pos["target", :2]
  return round(float(np.rad2deg(np.arctan2(x, y))) % 360)


def test_names_list_training_mixture_and_every_task():
  names = envs.list_environments()
  for name in ("family:reacher_targets", "family:reacher_targets-holdout",
               "family:reacher_targets-target30", "family:ant_boxes", "family:ant_boxes-holdout",
               "family:ant_boxes-move_box", "family:cheetah_speeds",
               "family:cheetah_speeds-holdout", "family:cheetah_speeds-speed4"):
    assert name in names


@pytest.mark.parametrize("name, problem", [
    ("family:reacher_target", "Unknown task family 'reacher_target'"),
    ("family:reacher_targets-target45", "Unknown task 'target45' of family 'reacher_targets'"),
])
def test_unknown_family_or_task_lists_the_valid_names(name, problem):
  with pytest.raises(envs.UnknownEnvironmentError, match=problem) as error:
    envs.make_environment(name, seed=0)
  assert "family:reacher_targets-holdout" in str(error.value)


def test_reacher_training_mixture_samples_a_training_target_per_episode():
  environment = envs.make_environment("family:reacher_targets", seed=3)
  angles = set()
  for _ in range(40):
    environment.reset()
    angles.add(_target_angle(environment))
  assert angles == {0, 30, 90, 120}  # Every training target, never the held-out 60°.


def test_reacher_holdout_is_its_own_task_and_the_target_is_a_task_key():
  environment = envs.make_environment("family:reacher_targets-holdout", seed=0)
  for _ in range(3):
    timestep = environment.reset()
    assert _target_angle(environment) == 60
  assert set(timestep.observation) == {"position", "to_target", "velocity"}
  assert families.FAMILIES["reacher_targets"].task_keys == ("to_target",)


def test_a_prior_blind_to_the_task_keys_ignores_them():
  """The family's task keys hidden from a learned prior: its output is the same whatever they
  hold (another target, another box, another task)."""
  environment = envs.make_environment("family:ant_boxes", seed=0)
  spec = environment.observation_spec()
  keys = tuple(k for k in spec if k not in ant_boxes.TASK_KEYS)
  assert keys == ("proprioception",)
  prior = priors.make_learned_prior(spec, action_size=8, hidden_sizes=(16,),
                                    observation_keys=keys, layer_norm=False, min_scale=1e-3)
  params = prior.init(jax.random.PRNGKey(0))
  observation = {k: v[None] for k, v in environment.reset().observation.items()}
  other = {k: (v if k in keys else v + 3.0) for k, v in observation.items()}
  pi = distributions.GaussianParams(np.zeros((1, 8), np.float32), np.ones((1, 8), np.float32))
  np.testing.assert_array_equal(prior.kl(params, observation, pi, None, None),
                                prior.kl(params, other, pi, None, None))


def test_ant_observations_and_timing():
  environment = envs.make_environment("family:ant_boxes-holdout", seed=0)
  timestep = environment.reset()
  assert timestep.observation["target_positions"].shape == (ant_boxes.NUM_TARGETS, 3)
  assert timestep.observation["task"].sum() == 2.0  # Two predicates, one target each.
  np.testing.assert_array_equal(timestep.observation["predicates_on"], [0.0, 0.0])
  assert environment.task.control_timestep == pytest.approx(0.05)
  assert environment.task.physics_timestep == pytest.approx(0.005)


def _move_walker_to(environment, xy):
  walker = environment.task._walker  # pylint: disable=protected-access
  # The pose is relative to the body's rest height (the root then stands ~0.5 m up).
  walker.set_pose(environment.physics, position=[xy[0], xy[1], 0.0])


def _goal(environment, index):
  task = environment.task
  return task._targets[task._goal_targets[index]].site_pos(  # pylint: disable=protected-access
      environment.physics)


def test_ant_go_to_target_pays_10_plus_50_and_ends():
  environment = envs.make_environment("family:ant_boxes-go_to_target", seed=1)
  environment.reset()
  timestep = environment.step(np.zeros(8, np.float32))
  assert timestep.reward == 0.0
  _move_walker_to(environment, _goal(environment, 0))
  timestep = environment.step(np.zeros(8, np.float32))
  assert timestep.reward == 10.0 + 50.0
  assert timestep.last() and timestep.discount == 0.0


def test_ant_predicate_turning_off_costs_10():
  """In the held-out task the walker on its target is one of two predicates: +10, no end; leaving
  the target again: −10."""
  environment = envs.make_environment("family:ant_boxes-holdout", seed=2)
  environment.reset()
  goal = _goal(environment, 0)
  _move_walker_to(environment, goal)
  timestep = environment.step(np.zeros(8, np.float32))
  assert timestep.reward == 10.0 and not timestep.last()
  np.testing.assert_array_equal(timestep.observation["predicates_on"], [1.0, 0.0])
  _move_walker_to(environment, environment.task._arena.spawn_positions[0])  # pylint: disable=protected-access
  timestep = environment.step(np.zeros(8, np.float32))
  assert timestep.reward == -10.0


def test_cheetah_holdout_is_the_suites_run_and_the_target_speed_is_a_task_key():
  environment = envs.make_environment("family:cheetah_speeds-holdout", seed=0)
  reference = suite.load("cheetah", "run", task_kwargs={"random": 0})
  timestep, reference_timestep = environment.reset(), reference.reset()
  assert set(timestep.observation) == {"position", "target_speed", "velocity"}
  np.testing.assert_array_equal(timestep.observation["target_speed"], [10.0])
  actions = np.random.RandomState(0).uniform(-1.0, 1.0, (100, 6))
  for action in actions:
    timestep, reference_timestep = environment.step(action), reference.step(action)
    assert timestep.reward == pytest.approx(reference_timestep.reward)
  assert families.FAMILIES["cheetah_speeds"].task_keys == ("target_speed",)


def test_cheetah_training_mixture_samples_a_target_speed_per_episode_and_pays_for_it():
  environment = envs.make_environment("family:cheetah_speeds", seed=3)
  speeds = {float(environment.reset().observation["target_speed"][0]) for _ in range(30)}
  assert speeds == {2.0, 4.0, 6.0}
  environment.reset()
  target = float(environment.task._speed)  # pylint: disable=protected-access
  # Reward min(max(speed / target, 0), 1): full at or above the target speed, half at half of it.
  environment.physics.named.data.sensordata["torso_subtreelinvel"][0] = target / 2
  assert environment.task.get_reward(environment.physics) == pytest.approx(0.5)
  environment.physics.named.data.sensordata["torso_subtreelinvel"][0] = target + 1.0
  assert environment.task.get_reward(environment.physics) == pytest.approx(1.0)
