"""`kl_svg0` with the hierarchical latent prior: learner steps, the policy gradient reaching π_H
through the action, acting, config checks, and transfer of π_L and π0_H with real freezing."""

import dataclasses
import json

import jax
import numpy as np
import pytest
from dm_env import specs as dm_specs

from priorax.agents import kl_svg0
from priorax.agents.kl_svg0 import losses
from priorax.launchers import overrides
from priorax.utils import checkpointing
from priorax.utils import counting
# The same two-key spec and random batches as the flat learner's tests.
from tests.agents.kl_svg0.test_learning import B
from tests.agents.kl_svg0.test_learning import SPEC
from tests.agents.kl_svg0.test_learning import _batches

# π_H sees everything; π0_H and π_L only the position.
CONFIG = kl_svg0.KLSVG0Config(
    prior="hierarchical", latent_size=4, policy_hidden_sizes=(8, 8), critic_hidden_sizes=(8, 8),
    prior_hidden_sizes=(8, 8), low_level_hidden_sizes=(8, 8), batch_size=B,
    prior_observation_keys=("position",), low_level_observation_keys=("position",))


def _learner(config=CONFIG, seed=0):
  builder = kl_svg0.KLSVG0Builder(config)
  return builder.make_learner(builder.make_networks(SPEC), builder.make_prior(SPEC),
                              _batches(seed), jax.random.PRNGKey(seed), SPEC,
                              counter=counting.Counter())


def _same(a, b) -> bool:
  return all(jax.tree_util.tree_leaves(jax.tree_util.tree_map(
      lambda x, y: np.array_equal(np.asarray(x), np.asarray(y)), a, b)))


def test_step_updates_both_levels_the_prior_and_the_critic_with_finite_losses():
  learner = _learner()
  before = learner.save()
  assert set(before.policy_params) == {"high", "low"} and before.prior_opt_state != ()
  for _ in range(3):
    learner.step()
  after = learner.save()
  for name in ("critic_params", "prior_params", "log_alpha"):
    assert not _same(getattr(before, name), getattr(after, name)), name
  for level in ("high", "low"):
    assert not _same(before.policy_params[level], after.policy_params[level]), level
  learner.check_finite()


def test_policy_gradient_reaches_the_high_level_through_the_action():
  """With α = 0 the loss is −Q(s, a) alone: π_H still gets a gradient, through a = f_L(z(θ_H))."""
  builder = kl_svg0.KLSVG0Builder(CONFIG)
  networks, prior = builder.make_networks(SPEC), builder.make_prior(SPEC)
  key = jax.random.PRNGKey(0)
  policy_params = networks.policy_init(key)
  grads, _ = jax.grad(losses.policy_loss, has_aux=True)(
      policy_params, networks.critic_init(key), prior.init(key), next(_batches(0)).observation,
      np.float32(0.0), key, networks=networks, prior=prior)
  for level in ("high", "low"):
    norm = sum(float(np.sum(np.square(g))) for g in jax.tree_util.tree_leaves(grads[level]))
    assert norm > 0.0, level


def test_distillation_and_the_regulariser_are_the_high_level_kl():
  """prior_loss and the policy's KL are both KL(π_H ‖ π0_H) on the batch (closed form, ≥ 0)."""
  builder = kl_svg0.KLSVG0Builder(CONFIG)
  networks, prior = builder.make_networks(SPEC), builder.make_prior(SPEC)
  key = jax.random.PRNGKey(0)
  policy_params, prior_params = networks.policy_init(key), prior.init(jax.random.PRNGKey(1))
  observation = next(_batches(0)).observation
  loss, _ = losses.prior_loss(prior_params, policy_params, observation, key, networks=networks,
                              prior=prior)
  high = networks.high_apply(policy_params["high"], observation)
  expected = np.mean(prior.kl(prior_params, observation, high, None, None))
  np.testing.assert_allclose(loss, expected, rtol=1e-6)
  assert loss >= 0.0


def test_acting_samples_in_training_and_is_deterministic_in_evaluation():
  builder = kl_svg0.KLSVG0Builder(CONFIG)
  networks = builder.make_networks(SPEC)
  params = networks.policy_init(jax.random.PRNGKey(0))
  observation = {k: np.ones(s.shape, np.float32) for k, s in SPEC.observations.items()}
  train = jax.jit(builder.make_policy(networks, evaluation=False))
  evaluate = jax.jit(builder.make_policy(networks, evaluation=True))
  a, b = train(params, jax.random.PRNGKey(1), observation), train(params, jax.random.PRNGKey(2),
                                                                  observation)
  assert a.shape == (2,) and np.all(np.abs(a) < 1.0) and not np.array_equal(a, b)
  np.testing.assert_array_equal(evaluate(params, jax.random.PRNGKey(1), observation),
                                evaluate(params, jax.random.PRNGKey(2), observation))


def _write_run(run_dir, learner, config=CONFIG):
  run_dir.mkdir(parents=True, exist_ok=True)
  (run_dir / "config.json").write_text(json.dumps(
      {"agent": "kl_svg0", "agent_config": dataclasses.asdict(config)}))
  checkpointing.Checkpointer(str(run_dir / "checkpoints")).save(
      3, {"learner_state": learner.save()._asdict()})


@pytest.fixture(scope="module")
def source_run(tmp_path_factory):
  """A trained (3 updates) hierarchical learner's run directory and its final state."""
  learner = _learner(seed=1)
  for _ in range(3):
    learner.step()
  run_dir = tmp_path_factory.mktemp("source")
  _write_run(run_dir, learner)
  return str(run_dir), learner.save()


@pytest.mark.parametrize("freeze", [True, False], ids=["frozen", "fine_tuned"])
def test_transferred_low_level_and_prior_are_frozen_or_fine_tuned(source_run, freeze):
  run_dir, source = source_run
  config = dataclasses.replace(CONFIG, prior_from=run_dir, freeze_low_level=freeze,
                               freeze_prior=freeze)
  learner = _learner(config, seed=2)
  start = learner.save()
  # π_L and π0_H start from the source run; π_H is new.
  assert _same(start.policy_params["low"], source.policy_params["low"])
  assert _same(start.prior_params, source.prior_params)
  assert not _same(start.policy_params["high"], source.policy_params["high"])
  assert (start.prior_opt_state == ()) == freeze
  for _ in range(3):
    learner.step()
  after = learner.save()
  learner.check_finite()
  assert not _same(after.policy_params["high"], start.policy_params["high"])
  assert not _same(after.critic_params, start.critic_params)
  # Frozen parts receive no update at all: bit-identical after three steps.
  assert _same(after.policy_params["low"], source.policy_params["low"]) == freeze
  assert _same(after.prior_params, source.prior_params) == freeze


def test_transfer_into_another_environment_fails_clearly(source_run, tmp_path):
  other = SPEC._replace(observations={"position": dm_specs.Array((4,), np.float32),
                                      "velocity": dm_specs.Array((2,), np.float32)})
  builder = kl_svg0.KLSVG0Builder(dataclasses.replace(CONFIG, prior_from=source_run[0]))
  with pytest.raises(checkpointing.CheckpointError,
                     match="prior_from=.*transferred low level's parameter shapes"):
    builder.make_learner(builder.make_networks(other), builder.make_prior(other), _batches(0),
                         jax.random.PRNGKey(0), other)


def test_unknown_low_level_key_fails_at_start():
  builder = kl_svg0.KLSVG0Builder(dataclasses.replace(CONFIG, low_level_observation_keys=("pos",)))
  with pytest.raises(overrides.ConfigError, match="low_level_observation_keys: unknown "
                                                  "observation key 'pos'"):
    builder.make_networks(SPEC)


@pytest.mark.parametrize("changes, message", [
    ({"low_level_observation_keys": None}, "prior='hierarchical' needs low_level_observation_keys"),
    ({"low_level_observation_keys": ("a", "a")}, "low_level_observation_keys=('a', 'a') repeats"),
    ({"prior_observation_keys": None}, "prior='hierarchical' needs prior_observation_keys"),
    ({"latent_size": 0}, "latent_size=0 must be >= 1"),
    ({"low_level_hidden_sizes": ()}, "low_level_hidden_sizes must be non-empty"),
    ({"freeze_low_level": True}, "freeze_low_level=True needs prior_from="),
    ({"freeze_prior": True}, "freeze_prior=True needs prior_from="),
    ({"prior": "uniform", "prior_observation_keys": None}, "low_level_observation_keys=('position',) "
                                                           "is only used by prior='hierarchical'"),
])
def test_hierarchical_config_is_checked(changes, message):
  with pytest.raises(ValueError) as error:
    dataclasses.replace(CONFIG, **changes)
  assert message in str(error.value)


@pytest.mark.parametrize("changes, message", [
    ({"prior_from": "runs/x"}, "prior_from='runs/x' is only used by prior='learned' or "
                               "'hierarchical', not prior='uniform'"),
    ({"freeze_low_level": True}, "freeze_low_level=True is only used by prior='hierarchical'"),
    ({"low_level_observation_keys": ("position",)}, "low_level_observation_keys=('position',) is "
                                                    "only used by prior='hierarchical'"),
])
def test_hierarchical_fields_are_rejected_for_other_priors(changes, message):
  with pytest.raises(ValueError) as error:
    kl_svg0.KLSVG0Config(**changes)
  assert message in str(error.value)
