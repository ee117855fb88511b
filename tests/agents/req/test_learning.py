"""REQ's learner and actors on tiny networks: updates, target copies, acting, intertwining."""

import dm_env
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from priorax import core
from priorax.agents.req import acting
from priorax.agents.req import config as config_lib
from priorax.agents.req import experts
from priorax.agents.req import losses
from priorax.agents.req import networks as networks_lib
from priorax.agents.req.builder import REQBuilder
from tests.agents.req import req_test_utils

TINY = dict(prior_hidden_sizes=(8,), critic_hidden_sizes=(8,), num_samples=4, batch_size=5,
            target_update_period=3)


def _learner(config, with_expert=False):
  spec = req_test_utils.environment_spec(observation_size=3, action_size=2)
  networks = networks_lib.make_networks(spec, config)

  def batches():
    key = jax.random.PRNGKey(0)
    while True:
      key, batch_key = jax.random.split(key)
      batch = req_test_utils.random_transitions(batch_key, batch=5, observation_size=3,
                                                action_size=2)
      if with_expert:
        batch.observation[experts.EXPERT_ACTION_KEY] = jnp.zeros((5, 2))
      yield batch

  builder = REQBuilder(config)
  return builder.make_learner(networks, None, batches(), jax.random.PRNGKey(1), spec), networks


@pytest.mark.parametrize("with_expert", [False, True])
def test_learner_steps_and_copies_targets_periodically(with_expert):
  config = config_lib.REQConfig(**TINY)
  learner, _ = _learner(config, with_expert)
  initial = learner.save()
  learner.step()
  state = learner.save()
  assert int(state.steps) == 1
  learner.check_finite()
  moved = jax.tree_util.tree_map(lambda a, b: np.abs(a - b).max(), state.policy_params,
                                 initial.policy_params)
  assert max(jax.tree_util.tree_leaves(moved)) > 0
  # Targets stay at the initial networks until step 3, then equal the online networks.
  jax.tree_util.tree_map(np.testing.assert_array_equal, state.target_params,
                         initial.target_params)
  learner.step()
  learner.step()
  state = learner.save()
  jax.tree_util.tree_map(np.testing.assert_array_equal, state.target_params, state.policy_params)
  assert learner.get_variables(["policy"])[0] is not None


def test_restore_continues_bit_for_bit():
  config = config_lib.REQConfig(**TINY)
  a, _ = _learner(config)
  b, _ = _learner(config)
  a.step()
  b.restore(a.save())
  # The next batch of both iterators is the same (same generator seed), so one more step each
  # must give identical states.
  next(b._iterator)  # pylint: disable=protected-access  # b has not consumed a's first batch.
  a.step()
  b.step()
  jax.tree_util.tree_map(np.testing.assert_array_equal, a.save(), b.save())


def test_nonfinite_loss_is_reported():
  config = config_lib.REQConfig(**TINY)
  learner, _ = _learner(config)

  def nan_batches():
    batch = req_test_utils.random_transitions(jax.random.PRNGKey(0), batch=5, observation_size=3,
                                              action_size=2)
    while True:
      yield batch._replace(reward=jnp.full((5,), jnp.nan))

  learner._iterator = nan_batches()  # pylint: disable=protected-access
  learner.step()
  with pytest.raises(core.NonFiniteLossError):
    learner.check_finite()


class _Source(core.VariableSource):

  def __init__(self, params):
    self._params = params

  def get_variables(self, names):
    return [self._params for _ in names]


def test_evaluation_policy_picks_best_prior_sample_and_training_policy_resamples():
  config = config_lib.REQConfig(**{**TINY, "num_samples": 64})
  learner, networks = _learner(config)
  params = learner.get_variables(["policy"])[0]
  observation = {"x": np.ones(3, np.float32)}
  greedy = jax.jit(acting.make_policy(networks, config, evaluation=True))
  stochastic = jax.jit(acting.make_policy(networks, config, evaluation=False))
  key = jax.random.PRNGKey(2)
  action = greedy(params, key, observation)
  # The same key draws the same prior samples: the greedy action has the highest Q among them.
  samples = losses.evaluate_prior_samples(
      params.prior, params.critic, {"x": observation["x"][None]}, jax.random.split(key)[0],
      networks=networks, num_samples=64, epsilon=config.epsilon, dual_steps=config.dual_steps)
  np.testing.assert_allclose(action, samples.actions[0, np.argmax(samples.q[0])])
  actions = np.stack([stochastic(params, k, observation)
                      for k in jax.random.split(key, 20)])
  assert actions.shape == (20, 2) and np.all(np.abs(actions) <= 1.0)
  assert len(np.unique(actions[:, 0])) > 1


class _RecordingAdder:

  def __init__(self):
    self.actions = []

  def add_first(self, timestep):
    del timestep

  def add(self, action, next_timestep, extras=()):
    del next_timestep, extras
    self.actions.append(np.asarray(action))


@pytest.mark.parametrize("p_intertwine,p_rho,expert_episodes,expected_fraction",
                         [(0.0, 1.0, 0, 0.0), (1.0, 1.0, 0, 1.0), (1.0, 0.5, 0, 0.5),
                          (0.5, 1.0, 0, 0.5), (0.0, 0.0, 200, 1.0)])
def test_intertwining_frequencies(p_intertwine, p_rho, expert_episodes, expected_fraction):
  config = config_lib.REQConfig(**TINY, p_intertwine=p_intertwine, p_rho=p_rho,
                                expert_episodes=expert_episodes)
  learner, networks = _learner(config)
  adder = _RecordingAdder()
  actor = acting.make_actor(acting.make_policy(networks, config, evaluation=False), learner,
                            jax.random.PRNGKey(3), config, adder)
  expert_action = np.full(2, 0.123, np.float32)
  observation = {"x": np.zeros(3, np.float32), experts.EXPERT_ACTION_KEY: expert_action}
  for _ in range(200):  # 200 episodes of 5 steps.
    actor.observe_first(dm_env.restart(observation))
    for _ in range(5):
      actor.observe(actor.select_action(observation), dm_env.transition(0.0, observation))
  fraction = np.mean([np.array_equal(a, expert_action) for a in adder.actions])
  assert abs(fraction - expected_fraction) < 0.08, fraction
  # An evaluator (no adder) never uses the expert.
  evaluator = acting.make_actor(acting.make_policy(networks, config, evaluation=True), learner,
                                jax.random.PRNGKey(3), config)
  evaluator.observe_first(dm_env.restart(observation))
  assert not np.array_equal(evaluator.select_action(observation), expert_action)
