"""IWPLA transfer of REQ's prior and critic torso (`priorax.agents.req.transfer`): what is loaded,
what starts afresh, what stays frozen, and that the adapting agent first follows the prior."""

import dataclasses
import json

import jax
import numpy as np
import pytest
from dm_env import specs as dm_specs

from priorax import core
from priorax import specs
from priorax import types
from priorax.agents.req import acting
from priorax.agents.req import config as config_lib
from priorax.agents.req import losses
from priorax.agents.req import networks as networks_lib
from priorax.agents.req import transfer
from priorax.agents.req.builder import REQBuilder
from priorax.utils import checkpointing

# The prior sees the arm only; the critic also sees the task key (the task id as input).
SIZES = {"arm": 3, "task": 2}
PRIOR_KEYS = ("arm",)
TINY = dict(prior_hidden_sizes=(8,), critic_hidden_sizes=(8, 8), num_samples=4, batch_size=5,
            target_update_period=3, prior_observation_keys=PRIOR_KEYS)


def _spec() -> specs.EnvironmentSpec:
  return specs.EnvironmentSpec(
      observations={k: dm_specs.Array((n,), np.float32, k) for k, n in SIZES.items()},
      actions=dm_specs.BoundedArray((2,), np.float32, -1.0, 1.0, "action"),
      rewards=dm_specs.Array((), np.float32, "reward"),
      discounts=dm_specs.BoundedArray((), np.float32, 0.0, 1.0, "discount"))


def _batches(seed):
  key = jax.random.PRNGKey(seed)
  while True:
    key, *keys = jax.random.split(key, 6)
    yield types.Transition(
        observation={k: jax.random.normal(keys[i], (5, n)) for i, (k, n) in
                     enumerate(SIZES.items())},
        action=jax.random.uniform(keys[2], (5, 2), minval=-1.0, maxval=1.0),
        reward=jax.random.normal(keys[3], (5,)),
        discount=np.full((5,), 0.99, np.float32),
        next_observation={k: jax.random.normal(keys[4], (5, n)) for k, n in SIZES.items()})


def _learner(config, seed=0):
  builder = REQBuilder(config)
  networks = builder.make_networks(_spec())
  learner = builder.make_learner(networks, None, _batches(seed), jax.random.PRNGKey(seed + 1),
                                 _spec())
  return learner, networks


def _tree_equal(a, b):
  jax.tree_util.tree_map(np.testing.assert_array_equal, a, b)


@pytest.fixture(scope="module")
def source_run(tmp_path_factory):
  """A `req` run directory as the launcher writes it, after a few learner steps."""
  run_dir = tmp_path_factory.mktemp("family")
  config = config_lib.REQConfig(**TINY)
  learner, _ = _learner(config)
  for _ in range(4):
    learner.step()
  (run_dir / "config.json").write_text(json.dumps(
      {"agent": "req", "env": "test", "agent_config": json.loads(json.dumps(
          dataclasses.asdict(config)))}))
  checkpointing.Checkpointer(str(run_dir / "checkpoints")).save(
      4, {"learner_state": learner.save()._asdict(), "counts": {}})
  return run_dir, learner.save().policy_params


def _transfer_config(source_dir, **overrides):
  return config_lib.REQConfig(**{**TINY, "transfer": "iwpla", "prior_from": str(source_dir),
                                 **overrides})


def test_iwpla_loads_prior_and_torso_and_starts_a_zero_head(source_run):
  source_dir, saved = source_run
  learner, _ = _learner(_transfer_config(source_dir), seed=7)
  params = learner.save().policy_params
  _tree_equal(params.prior, saved.prior)
  saved_torso, saved_head = transfer.split_critic(saved.critic)
  torso, head = transfer.split_critic(params.critic)
  assert set(head) == {"scalar_head/linear"} and len(torso) >= 3
  _tree_equal(torso, saved_torso)
  assert all(np.all(leaf == 0) for leaf in jax.tree_util.tree_leaves(head))
  assert any(np.any(leaf != 0) for leaf in jax.tree_util.tree_leaves(saved_head))
  _tree_equal(learner.save().target_params, params)


def test_prior_only_transfer_draws_a_fresh_critic(source_run):
  source_dir, saved = source_run
  learner, networks = _learner(_transfer_config(source_dir, transfer="prior"), seed=7)
  params = learner.save().policy_params
  _tree_equal(params.prior, saved.prior)
  for got, old in zip(jax.tree_util.tree_leaves(params.critic),
                      jax.tree_util.tree_leaves(saved.critic)):
    assert not np.array_equal(got, old)
  # Freshly initialised: the critic's biases start at zero, its weights are random draws.
  assert np.all(params.critic["scalar_head/linear"]["b"] == 0)
  assert np.std(params.critic["scalar_head/linear"]["w"]) > 0
  assert networks.prior_observation_keys == PRIOR_KEYS
  assert networks.observation_keys == ("arm", "task")


@pytest.mark.parametrize("freeze_prior,freeze_torso", [(True, True), (False, False)])
def test_frozen_parts_receive_no_update(source_run, freeze_prior, freeze_torso):
  source_dir, saved = source_run
  learner, _ = _learner(_transfer_config(source_dir, freeze_prior=freeze_prior,
                                         freeze_torso=freeze_torso), seed=3)
  for _ in range(5):
    learner.step()
  learner.check_finite()
  params = learner.save().policy_params
  saved_torso, _ = transfer.split_critic(saved.critic)
  torso, head = transfer.split_critic(params.critic)
  assert any(np.any(leaf != 0) for leaf in jax.tree_util.tree_leaves(head))  # The head learns.
  if freeze_prior:
    _tree_equal(params.prior, saved.prior)
    _tree_equal(torso, saved_torso)
  else:
    for now, before in ((params.prior, saved.prior), (torso, saved_torso)):
      moved = jax.tree_util.tree_map(lambda a, b: np.abs(a - b).max(), now, before)
      assert max(jax.tree_util.tree_leaves(moved)) > 0


def test_adapting_agent_first_follows_the_prior(source_run):
  source_dir, _ = source_run
  config = _transfer_config(source_dir, num_samples=8)
  learner, networks = _learner(config, seed=5)
  params = learner.get_variables(["policy"])[0]
  observation = {k: np.linspace(-1.0, 1.0, n).astype(np.float32) for k, n in SIZES.items()}
  batched = jax.tree_util.tree_map(lambda x: x[None], observation)
  samples = losses.evaluate_prior_samples(
      params.prior, params.critic, batched, jax.random.PRNGKey(0), networks=networks,
      num_samples=8, epsilon=config.epsilon, dual_steps=config.dual_steps)
  np.testing.assert_array_equal(samples.q, 0.0)  # Q is uninformative: the head is zero.
  np.testing.assert_allclose(losses.importance_weights(samples.q, samples.temperature), 1 / 8)
  # The training policy's actions are then distributed as the prior's: compare moments of the
  # pre-tanh actions over 4000 draws with the prior's Gaussian.
  policy = jax.jit(jax.vmap(acting.make_policy(networks, config, evaluation=False),
                            in_axes=(None, 0, None)))
  actions = policy(params, jax.random.split(jax.random.PRNGKey(1), 4000), observation)
  pre_tanh = np.arctanh(np.clip(np.asarray(actions), -0.999999, 0.999999))
  gaussian = networks.prior_apply(params.prior, batched)
  np.testing.assert_allclose(pre_tanh.mean(0), gaussian.mean[0], atol=0.06)
  np.testing.assert_allclose(pre_tanh.std(0), gaussian.std[0], rtol=0.08)


def test_mismatched_source_is_refused(source_run, tmp_path):
  source_dir, _ = source_run
  with pytest.raises(checkpointing.CheckpointError, match="prior_from=.*critic torso.*"
                     "critic_hidden_sizes saved \\[8, 8\\], now \\(16,\\)"):
    _learner(_transfer_config(source_dir, critic_hidden_sizes=(16,)))
  with pytest.raises(checkpointing.CheckpointError, match="prior_from=.*no checkpoint|cannot read"):
    _learner(_transfer_config(tmp_path))


@pytest.mark.parametrize("overrides,message", [
    (dict(transfer="iwpla"), "needs prior_from"),
    (dict(prior_from="runs/x"), "needs prior_from"),
    (dict(transfer="prior", prior_from="runs/x", freeze_torso=True), "freeze_torso=True needs"),
    (dict(freeze_prior=True), "freeze_prior=True needs"),
    (dict(transfer="maml"), "transfer='maml' must be one of"),
    (dict(prior_observation_keys=("arm", "arm")), "must name distinct"),
])
def test_bad_transfer_settings_are_refused(overrides, message):
  with pytest.raises(ValueError, match=message):
    config_lib.REQConfig(**overrides)


def test_unknown_prior_key_is_a_config_error():
  with pytest.raises(core.ConfigError, match="\\['target'\\] not among"):
    REQBuilder(config_lib.REQConfig(prior_observation_keys=("target",))).make_networks(_spec())
