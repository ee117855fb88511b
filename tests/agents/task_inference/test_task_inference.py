"""`task_inference` learner pieces: the belief loss by hand, where each variant's gradients go,
the policy's and rl2's critic's blindness to `task`, the recurrent critic's stored-state replay,
and a finite update for every variant."""

import dm_env
from dm_env import specs as dm_specs
import haiku as hk
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import reverb

from priorax import specs
from priorax.agents.task_inference import acting
from priorax.agents.task_inference import builder as builder_lib
from priorax.agents.task_inference import config as config_lib
from priorax.agents.task_inference import learning
from priorax.agents.task_inference import losses
from priorax.agents.task_inference import networks as networks_lib
from priorax.agents.kl_svg0 import sequence_losses
from priorax.launchers import evaluation
from priorax.networks import recurrent
from priorax.replay.types import Step
from tests.replay.replay_test_utils import read_all


def _spec(task_shape):
  return specs.EnvironmentSpec(
      observations={"position": dm_specs.Array((2,), np.float32),
                    "task": dm_specs.Array(task_shape, np.float32)},
      actions=dm_specs.BoundedArray((2,), np.float32, -1.0, 1.0),
      rewards=dm_specs.Array((), np.float32),
      discounts=dm_specs.BoundedArray((), np.float32, 0.0, 1.0))


VECTOR_SPEC = _spec((2,))
ONE_HOT_SPEC = _spec((3, 4))  # Numpad-like: 3 rows of one-hot over 4 classes.
BURN_IN, LENGTH, BATCH = 2, 4, 3


def _config(variant, **kwargs):
  return config_lib.TaskInferenceConfig(
      variant=variant, core_hidden_sizes=(8,), lstm_size=6, policy_hidden_sizes=(8,),
      critic_hidden_sizes=(8,), sequence_length=LENGTH, sequence_period=LENGTH, burn_in=BURN_IN,
      num_action_samples=2, batch_size=BATCH, **kwargs)


def _task(spec, random, shape):
  task_shape = spec.observations["task"].shape
  if len(task_shape) == 2:
    return np.eye(task_shape[1], dtype=np.float32)[random.randint(task_shape[1],
                                                                  size=shape + task_shape[:1])]
  return random.normal(size=shape + task_shape).astype(np.float32)


def _steps(spec, lstm_size, seed=0):
  """A random [B, N] batch shaped like the replay's, with an episode start inside."""
  random = np.random.RandomState(seed)
  n = BURN_IN + LENGTH + 1
  starts = np.zeros((BATCH, n), bool)
  starts[0, 3] = True
  state = random.normal(size=(BATCH, n, lstm_size)).astype(np.float32)
  u = random.normal(size=(BATCH, n, 2)).astype(np.float32)
  return Step(
      observation={"position": random.normal(size=(BATCH, n, 2)).astype(np.float32),
                   "task": _task(spec, random, (BATCH, n))},
      action=np.tanh(u), reward=random.normal(size=(BATCH, n)).astype(np.float32),
      discount=np.ones((BATCH, n), np.float32), start_of_episode=starts,
      mask=np.ones((BATCH, n), np.float32),
      extras=recurrent.RecurrentExtras(
          core_state=hk.LSTMState(hidden=state, cell=state),
          prev_action=np.zeros((BATCH, n, 2), np.float32),
          prev_reward=np.zeros((BATCH, n), np.float32),
          policy_extras={sequence_losses.EXTRAS_LOG_PROB: random.normal(size=(BATCH, n)).astype(
              np.float32), sequence_losses.EXTRAS_PRE_TANH_ACTION: u}))


def test_gaussian_belief_loss_matches_a_hand_computation():
  belief = networks_lib.Belief(loc=jnp.array([[0.5, -1.0]]), scale=jnp.array([[2.0, 0.5]]))
  task = jnp.array([[1.5, -1.0]])
  # −log N(1.5; 0.5, 2²) − log N(−1; −1, 0.5²).
  expected = (0.5 * (1.0 / 2.0) ** 2 + np.log(2.0) + 0.5 * np.log(2 * np.pi)
              + 0.0 + np.log(0.5) + 0.5 * np.log(2 * np.pi))
  np.testing.assert_allclose(losses.belief_nll(belief, task, categorical=False), [expected],
                             rtol=1e-6)
  np.testing.assert_allclose(losses.belief_error(belief, task, categorical=False), [1.0])


def test_categorical_belief_loss_matches_a_hand_computation():
  logits = jnp.array([[[0.0, np.log(3.0)], [np.log(2.0), np.log(2.0)]]])  # 2 rows, 2 classes.
  task = jnp.array([[[1.0, 0.0], [0.0, 1.0]]])
  expected = -np.log(1.0 / 4.0) - np.log(0.5)
  np.testing.assert_allclose(
      losses.belief_nll(networks_lib.Belief(logits, None), task, categorical=True), [expected],
      rtol=1e-6)
  # Row 0's argmax is class 1 (wrong); row 1 ties and argmax picks class 0 (wrong too).
  np.testing.assert_allclose(
      losses.belief_error(networks_lib.Belief(logits, None), task, categorical=True), [1.0])


def _policy_loss_parts(spec, variant):
  config = _config(variant)
  networks = networks_lib.make_networks(spec, config)
  builder = builder_lib.TaskInferenceBuilder(config)
  prior = builder.make_prior(spec)
  params = networks.init(jax.random.PRNGKey(1))
  critic_params = networks.critics.critic_init(jax.random.PRNGKey(2))
  steps = _steps(spec, config.lstm_size)

  def loss(params, belief_cost):
    return losses.policy_loss(
        params, critic_params, params, prior.params, steps, jnp.asarray(0.5), jax.random.PRNGKey(3),
        networks=networks, prior=prior, burn_in=BURN_IN, belief_cost=belief_cost,
        entropy_cost=0.0, num_action_samples=2)

  return networks, params, loss


def _norm(tree):
  return float(sum(jnp.sum(jnp.abs(x)) for x in jax.tree_util.tree_leaves(tree)))


@pytest.mark.parametrize("spec", [VECTOR_SPEC, ONE_HOT_SPEC], ids=["gaussian", "categorical"])
def test_task_inference_policy_gets_no_belief_gradient_and_belief_no_rl_gradient(spec):
  _, params, loss = _policy_loss_parts(spec, "task_inference")
  belief_grads = jax.grad(lambda p: _belief_loss(p, spec))(params)
  assert _norm(belief_grads["core"]) > 0
  policy_head = {k: v for k, v in belief_grads["heads"].items() if k.startswith("policy")}
  assert policy_head and _norm(policy_head) == 0.0
  rl_grads = jax.grad(lambda p: loss(p, 0.0)[0])(params)
  assert _norm(rl_grads["core"]) == 0.0
  assert _norm({k: v for k, v in rl_grads["heads"].items() if k.startswith("belief")}) == 0.0
  assert _norm({k: v for k, v in rl_grads["heads"].items() if k.startswith("policy")}) > 0


def _belief_loss(params, spec, variant="task_inference"):
  networks = networks_lib.make_networks(spec, _config(variant))
  steps = _steps(spec, 6)
  features, tail = losses.replay_features(networks, params, steps, BURN_IN)
  observation = jax.tree_util.tree_map(lambda x: x.reshape((-1, *x.shape[2:])), tail.observation)
  belief = networks.heads_apply(params["heads"], features, observation).belief
  return jnp.mean(losses.belief_nll(belief, observation["task"], networks.categorical_task))


def test_rl2_aux_loss_reaches_the_core_and_rl2_has_no_belief():
  networks, params, _ = _policy_loss_parts(VECTOR_SPEC, "rl2_aux")
  grads = jax.grad(lambda p: _belief_loss(p, VECTOR_SPEC, "rl2_aux"))(params)
  assert _norm(grads["core"]) > 0
  rl2 = networks_lib.make_networks(VECTOR_SPEC, _config("rl2"))
  assert not rl2.has_belief and networks.has_belief
  rl2_params = rl2.init(jax.random.PRNGKey(0))
  assert not any(k.startswith("belief") for k in rl2_params["heads"])


@pytest.mark.parametrize("variant", ["rl2", "rl2_aux", "task_inference"])
def test_policy_input_ignores_the_task_descriptor(variant):
  networks = networks_lib.make_networks(VECTOR_SPEC, _config(variant))
  params = networks.init(jax.random.PRNGKey(0))
  policy = jax.jit(acting.make_policy(networks, evaluation=True))
  state = networks.core.initial_state(None)
  inputs = recurrent.CoreInput({"position": np.array([0.3, -0.2], np.float32),
                                "task": np.array([1.0, 2.0], np.float32)},
                               np.array([0.1, 0.1], np.float32), np.float32(0.5))
  changed = inputs._replace(observation={**inputs.observation,
                                         "task": np.array([-5.0, 7.0], np.float32)})
  (action, _), next_state = policy(params, jax.random.PRNGKey(0), inputs, state)
  (action_changed, _), next_state_changed = policy(params, jax.random.PRNGKey(0), changed, state)
  np.testing.assert_array_equal(action, action_changed)
  np.testing.assert_array_equal(next_state.hidden, next_state_changed.hidden)


def test_oracle_policy_reads_the_task_descriptor():
  networks = networks_lib.make_networks(VECTOR_SPEC, _config("oracle"))
  params = networks.init(jax.random.PRNGKey(0))
  observation = {"position": np.zeros((1, 2), np.float32), "task": np.ones((1, 2), np.float32)}
  features = np.zeros((1, 6), np.float32)
  a = networks.heads_apply(params["heads"], features, observation).policy.mean
  b = networks.heads_apply(params["heads"], features, {**observation, "task": -observation[
      "task"]}).policy.mean
  assert not np.allclose(a, b)


@pytest.mark.parametrize("spec,variant", [(VECTOR_SPEC, v) for v in config_lib.VARIANTS]
                         + [(ONE_HOT_SPEC, "task_inference")])
def test_learner_step_is_finite_for_every_variant(spec, variant):
  config = _config(variant, target_update_period=2)
  builder = builder_lib.TaskInferenceBuilder(config)
  networks = builder.make_networks(spec)
  batches = iter([_steps(spec, config.lstm_size, seed) for seed in range(3)])
  learner = builder.make_learner(networks, builder.make_prior(spec), batches,
                                 jax.random.PRNGKey(0), spec)
  before = learner.save()
  for _ in range(3):
    learner.step()
  learner.check_finite()
  after = learner.save()
  assert int(after.steps) == 3
  for name in ("core", "heads"):
    assert _norm(jax.tree_util.tree_map(lambda a, b: a - b, after.policy_params[name],
                                        before.policy_params[name])) > 0, name
  # Target copies were refreshed at update 2.
  assert _norm(jax.tree_util.tree_map(lambda a, b: a - b, after.target_policy_params,
                                      before.target_policy_params)) > 0


def _critic_parts(variant, spec=VECTOR_SPEC):
  config = _config(variant)
  networks = networks_lib.make_networks(spec, config)
  params = networks.init(jax.random.PRNGKey(1))
  critic_params = networks.critics.critic_init(jax.random.PRNGKey(2))
  prior = builder_lib.TaskInferenceBuilder(config).make_prior(spec)

  def critic_loss(critic_params, policy_params, steps):
    return losses.critic_loss(
        critic_params, critic_params, policy_params, policy_params, prior.params, steps,
        jnp.asarray(0.5), jax.random.PRNGKey(3), networks=networks, prior=prior, burn_in=BURN_IN,
        discount=0.9, lambda_=1.0, num_action_samples=2)[0]

  return networks, params, critic_params, critic_loss


def _replayed_q(networks, params, critic_params, steps, burn_in):
  """Q_i(h_t, a_t) [2, B·(N − burn_in)] of replayed sequences, by the learner's own path."""
  features, tail = losses.replay_features(networks, params, steps, burn_in)
  flat = jax.tree_util.tree_map(lambda x: x.reshape((-1, *x.shape[2:])), tail)
  return networks_lib.replay_networks(networks).critic_apply(
      losses.critic_parameters(networks, critic_params, features), flat.observation, flat.action)


def test_recurrent_critic_replayed_from_its_stored_state_equals_the_online_pass():
  networks, params, critic_params, _ = _critic_parts("rl2")
  random = np.random.RandomState(0)
  length, first, starts_at = 12, 3, 7  # Online steps; the replayed window; an episode start.
  position = random.normal(size=(length, 2)).astype(np.float32)
  action = np.tanh(random.normal(size=(length, 2))).astype(np.float32)
  reward = random.normal(size=(length,)).astype(np.float32)
  start = np.zeros(length, bool)
  start[[0, starts_at]] = True
  # The online pass, as the actor runs it: the core's state carried and reset at episode starts.
  state, states, online_q = networks.core.initial_state(1), [], []
  for t in range(length):
    if start[t]:
      state = networks.core.initial_state(1)
    states.append(state)
    prev_action = np.zeros((1, 2), np.float32) if start[t] else action[None, t - 1]
    prev_reward = np.zeros((1,), np.float32) if start[t] else reward[None, t - 1]
    inputs = recurrent.CoreInput({"position": position[None, t], "task": np.ones((1, 2))},
                                 prev_action, prev_reward)
    features, state = networks.core.step(params["core"], inputs, state)
    online_q.append(networks.critics.critic_apply(
        critic_params, {networks_lib.FEATURES_KEY: features}, action[None, t])[:, 0])
  # The replayed window steps first … length − 1, from the state the actor stored at `first`.
  window = slice(first, length)
  stored = jax.tree_util.tree_map(lambda *x: jnp.stack(x, 1), *states)  # [1, length, H].
  steps = Step(
      observation={"position": position[None, window], "task": np.ones((1, length - first, 2))},
      action=action[None, window], reward=reward[None, window],
      discount=np.ones((1, length - first)), start_of_episode=start[None, window],
      mask=np.ones((1, length - first)),
      extras=recurrent.RecurrentExtras(
          core_state=hk.LSTMState(stored.hidden[:, window], stored.cell[:, window]),
          prev_action=np.concatenate([np.zeros((1, 2)), action[:-1]])[None, window],
          prev_reward=np.concatenate([[0.0], reward[:-1]])[None, window]))
  replayed = _replayed_q(networks, params, critic_params, steps, BURN_IN)
  np.testing.assert_allclose(replayed, np.stack(online_q[first + BURN_IN:], 1), rtol=1e-5,
                             atol=1e-5)


@pytest.mark.parametrize("variant", ["rl2", "rl2_aux"])
def test_rl2_critic_sees_no_task_descriptor(variant):
  networks, params, critic_params, critic_loss = _critic_parts(variant)
  assert networks.recurrent_critic
  steps = _steps(VECTOR_SPEC, 6)
  changed = steps._replace(observation={**steps.observation,
                                        "task": steps.observation["task"] * -3.0 + 1.0})
  np.testing.assert_array_equal(_replayed_q(networks, params, critic_params, steps, BURN_IN),
                                _replayed_q(networks, params, critic_params, changed, BURN_IN))
  np.testing.assert_array_equal(critic_loss(critic_params, params, steps),
                                critic_loss(critic_params, params, changed))


def test_privileged_critic_reads_the_task_descriptor():
  networks, params, critic_params, _ = _critic_parts("task_inference")
  assert not networks.recurrent_critic
  steps = _steps(VECTOR_SPEC, 6)
  changed = steps._replace(observation={**steps.observation,
                                        "task": steps.observation["task"] * -3.0 + 1.0})
  assert not np.allclose(_replayed_q(networks, params, critic_params, steps, BURN_IN),
                         _replayed_q(networks, params, critic_params, changed, BURN_IN))


@pytest.mark.parametrize("variant,reaches_core", [("rl2", True), ("rl2_aux", True),
                                                  ("task_inference", False), ("oracle", False)])
def test_critic_loss_trains_the_shared_core_only_for_recurrent_critics(variant, reaches_core):
  _, params, critic_params, critic_loss = _critic_parts(variant)
  steps = _steps(VECTOR_SPEC, 6)
  critic_grads, policy_grads = jax.grad(critic_loss, argnums=(0, 1))(critic_params, params, steps)
  assert _norm(critic_grads) > 0
  assert (_norm(policy_grads["core"]) > 0) == reaches_core
  assert _norm(policy_grads["heads"]) == 0.0


def test_the_first_sequence_of_an_episode_trains_from_its_first_step():
  """The builder's adder writes burn_in padding steps before each episode, so the part of the
  episode's first sequence that the learner trains on (after burn-in) starts at the episode's
  first step: R2D2's sequences would never train on steps 0 … burn_in − 1 (the first trial of a
  multi-trial meta-RL episode)."""
  builder = builder_lib.TaskInferenceBuilder(_config("task_inference"))
  networks = builder.make_networks(VECTOR_SPEC)
  [table] = builder.make_replay_tables(VECTOR_SPEC)
  # A FIFO table of the replay's name and signature, so that items are read back in order.
  server = reverb.Server([reverb.Table.queue(builder_lib.REPLAY_TABLE, 100,
                                             signature=table.info.signature)])
  try:
    client = reverb.Client(f"localhost:{server.port}")
    actor = builder.make_actor(builder.make_policy(networks, evaluation=False),
                               evaluation.StaticVariables(
                                   {"policy": networks.init(jax.random.PRNGKey(0))}),
                               jax.random.PRNGKey(1), builder.make_adder(client))
    random = np.random.RandomState(0)
    num_actions = LENGTH + 1
    observations = [{"position": random.normal(size=2).astype(np.float32),
                     "task": np.ones(2, np.float32)} for _ in range(num_actions + 1)]
    actor.observe_first(dm_env.restart(observations[0]))
    for t in range(num_actions):
      action = actor.select_action(observations[t])
      make = dm_env.truncation if t == num_actions - 1 else dm_env.transition
      actor.observe(action, make(np.float32(1.0), observations[t + 1], np.float32(1.0)))
    first = read_all(client, builder_lib.REPLAY_TABLE)[0]
  finally:
    server.stop()
  np.testing.assert_array_equal(first.mask[:BURN_IN], 0.0)
  assert first.start_of_episode[BURN_IN]
  np.testing.assert_array_equal(first.mask[BURN_IN:], 1.0)
  np.testing.assert_array_equal(first.observation["position"][BURN_IN:],
                                [o["position"] for o in observations[:LENGTH + 1]])


def test_config_rejects_bad_values():
  with pytest.raises(ValueError, match="variant='rl3'.*rl2"):
    config_lib.TaskInferenceConfig(variant="rl3")
  with pytest.raises(ValueError, match="aux_cost=0.5 is only used by variant='rl2_aux'"):
    config_lib.TaskInferenceConfig(variant="rl2", aux_cost=0.5)


def test_make_networks_needs_a_task_observation():
  spec = VECTOR_SPEC._replace(observations={"position": dm_specs.Array((2,), np.float32)})
  with pytest.raises(ValueError, match="needs an observation 'task'"):
    networks_lib.make_networks(spec, _config("rl2"))
