"""The `kl_svg0` learner: one step, exact resume from a checkpoint file, the learned prior."""

import dataclasses

import jax
import numpy as np
import optax
import pytest

from priorax import types
from priorax.agents import kl_svg0
from priorax.agents.kl_svg0 import learning
from priorax.agents.kl_svg0 import losses
from priorax.launchers import local
from priorax.launchers import overrides
from priorax.utils import checkpointing
from priorax.utils import counting
from priorax.utils import loggers

from dm_env import specs as dm_specs
from priorax import specs

B = 16
SPEC = specs.EnvironmentSpec(
    observations={"position": dm_specs.Array((3,), np.float32),
                  "velocity": dm_specs.Array((2,), np.float32)},
    actions=dm_specs.BoundedArray((2,), np.float32, -1.0, 1.0),
    rewards=dm_specs.Array((), np.float32), discounts=dm_specs.Array((), np.float32))
CONFIG = kl_svg0.KLSVG0Config(policy_hidden_sizes=(8, 8), critic_hidden_sizes=(8, 8),
                              batch_size=B)
# π0(a | position): denied the velocity.
LEARNED = dataclasses.replace(CONFIG, prior="learned", prior_observation_keys=("position",),
                              prior_hidden_sizes=(8, 8))


def _batches(seed):
  rng = np.random.default_rng(seed)
  while True:
    obs = lambda: {k: rng.normal(size=(B, *s.shape)).astype(np.float32)
                   for k, s in SPEC.observations.items()}
    yield types.Transition(obs(), rng.uniform(-1, 1, (B, 2)).astype(np.float32),
                           rng.normal(size=B).astype(np.float32),
                           np.full(B, 0.99, np.float32), obs())


def _learner(iterator, seed=0, config=CONFIG, logger=None):
  builder = kl_svg0.KLSVG0Builder(config)
  return builder.make_learner(builder.make_networks(SPEC), builder.make_prior(SPEC), iterator,
                              jax.random.PRNGKey(seed), SPEC, counter=counting.Counter(),
                              logger=logger)


class _RecordingLogger(loggers.Logger):

  def __init__(self):
    self.rows = []

  def write(self, data):
    self.rows.append(data)


def _changed(before, after, name) -> bool:
  """Whether any leaf of TrainingState field `name` differs between two states."""
  differs = jax.tree_util.tree_map(lambda a, b: np.any(a != b), getattr(before, name),
                                   getattr(after, name))
  return any(jax.tree_util.tree_leaves(differs))


def test_step_updates_every_network_and_keeps_losses_finite():
  learner = _learner(_batches(0))
  before = learner.save()
  learner.step()
  after = learner.save()
  for name in ("policy_params", "critic_params", "target_critic_params", "log_alpha"):
    assert _changed(before, after, name), name
  assert int(after.steps) == 1
  learner.check_finite()


@pytest.mark.parametrize("config", [CONFIG, LEARNED], ids=["uniform", "learned"])
def test_restored_learner_gives_the_same_next_update_bit_for_bit(tmp_path, config):
  batches = list(zip(range(4), _batches(1)))
  uninterrupted = _learner(iter(b for _, b in batches), config=config)
  for _ in range(3):
    uninterrupted.step()

  first = _learner(iter(b for _, b in batches[:3]), config=config)
  for _ in range(3):
    first.step()
  checkpointer = checkpointing.Checkpointer(str(tmp_path))
  checkpointer.save(3, {"learner_state": first.save()._asdict()})
  # A fresh learner with a different seed: everything must come from the checkpoint file.
  resumed = _learner(iter([batches[3][1]]), seed=99, config=config)
  local.restore_learner_state(resumed, checkpointer.load_latest()["learner_state"], "ckpt")

  uninterrupted.step()
  resumed.step()
  expected, got = uninterrupted.save(), resumed.save()
  assert int(got.steps) == 4
  jax.tree_util.tree_map(np.testing.assert_array_equal, expected, got)


def test_restore_rejects_a_differently_shaped_network(tmp_path):
  small = _learner(_batches(0))
  bigger = _learner(_batches(0), config=dataclasses.replace(CONFIG, policy_hidden_sizes=(9, 8)))
  with pytest.raises(checkpointing.CheckpointError, match="parameter shapes differ"):
    local.restore_learner_state(bigger, small.save()._asdict(), "ckpt")


def test_alpha_is_fixed_when_not_tuned():
  learner = _learner(_batches(0), config=dataclasses.replace(CONFIG, tune_alpha=False,
                                                             init_alpha=0.3))
  for _ in range(3):
    learner.step()
  np.testing.assert_allclose(np.exp(learner.save().log_alpha), 0.3, rtol=1e-6)


def test_critic_soft_reset_switch_wraps_the_critic_optimiser():
  """With the switch on, the critic's optimiser state is the soft reset's (drift per parameter)
  and the update stays finite; without it, plain Adam."""
  from priorax.stream import soft_reset
  plain = _learner(_batches(0))
  wrapped = _learner(_batches(0), config=dataclasses.replace(CONFIG, critic_soft_reset=True))
  plain.step()
  wrapped.step()
  assert isinstance(wrapped.save().critic_opt_state, soft_reset.SoftResetState)
  assert not isinstance(plain.save().critic_opt_state, soft_reset.SoftResetState)
  wrapped.check_finite()
  # Same seed, same batch: the policy update is identical, the critic's is not.
  jax.tree_util.tree_map(np.testing.assert_array_equal, plain.save().policy_params,
                         wrapped.save().policy_params)
  assert any(jax.tree_util.tree_leaves(jax.tree_util.tree_map(
      lambda a, b: np.any(a != b), plain.save().critic_params, wrapped.save().critic_params)))


def test_learned_prior_steps_keeps_losses_finite_and_is_distilled():
  logger = _RecordingLogger()
  learner = _learner(_batches(0), config=LEARNED, logger=logger)
  before = learner.save()
  assert before.prior_opt_state != ()  # Adam's state for π0.
  for _ in range(3):
    learner.step()
  after = learner.save()
  for name in ("policy_params", "critic_params", "prior_params", "prior_opt_state"):
    assert _changed(before, after, name), name
  learner.check_finite()
  assert len(logger.rows) == 3
  for row in logger.rows:
    for key in ("prior_loss", "kl_mean", "policy_loss", "critic_loss"):
      assert np.isfinite(row[key]), (key, row)
    # Both are KL(π ‖ π0) on the batch, in closed form: ≥ 0, equal up to float error.
    assert row["prior_loss"] >= 0.0 and row["kl_mean"] >= 0.0, row
    np.testing.assert_allclose(row["prior_loss"], row["kl_mean"], rtol=1e-4)


def test_prior_params_of_a_fixed_prior_run_are_left_alone_and_have_no_optimiser_state():
  learner = _learner(_batches(0))
  assert learner.save().prior_opt_state == ()
  learner.step()
  assert learner.save().prior_params == () and learner.save().prior_opt_state == ()


def test_a_checkpoint_from_before_learned_priors_restores(tmp_path):
  """Checkpoints written before `prior_opt_state` existed lack the field: they restore (with the
  template's ()) and continue exactly like the learner that wrote them."""
  batches = list(_batch for _, _batch in zip(range(2), _batches(2)))
  writer = _learner(iter(batches))
  writer.step()
  old = writer.save()._asdict()
  del old["prior_opt_state"]
  resumed = _learner(iter(batches[1:]), seed=5)
  local.restore_learner_state(resumed, old, "old-ckpt")
  writer.step()
  resumed.step()
  jax.tree_util.tree_map(np.testing.assert_array_equal, writer.save(), resumed.save())


def test_update_moves_the_prior_by_the_distillation_gradient_alone():
  """With SGD(1) on π0, its update is exactly −∇φ prior_loss at the pre-update state: the policy
  loss (whose KL also depends on φ) contributes nothing to π0, and the critic and α none either."""
  builder = kl_svg0.KLSVG0Builder(LEARNED)
  networks, prior = builder.make_networks(SPEC), builder.make_prior(SPEC)
  key = jax.random.PRNGKey(0)
  policy_params = networks.policy_init(key)
  prior_params = prior.init(jax.random.PRNGKey(1))
  prior_optimizer = optax.sgd(1.0)
  state = learning.make_initial_state(policy_params, networks.critic_init(key), prior_params, key,
                                      optax.adam(1e-3), optax.adam(1e-3), optax.adam(1e-3),
                                      prior_optimizer, init_alpha=1.0)
  update = learning.make_update_step(networks, prior, optax.adam(1e-3), optax.adam(1e-3),
                                     optax.adam(1e-3), prior_optimizer, tune_alpha=True,
                                     target_kl=1.0, target_update_rate=0.005)
  batch = next(_batches(3))
  new_state, metrics = jax.jit(update)(state, batch)
  prior_key = jax.random.split(state.key, 4)[3]
  (loss, _), grads = jax.value_and_grad(losses.prior_loss, has_aux=True)(
      prior_params, policy_params, batch.observation, prior_key, networks=networks, prior=prior)
  expected = jax.tree_util.tree_map(lambda p, g: p - g, prior_params, grads)
  jax.tree_util.tree_map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7),
                         new_state.prior_params, expected)
  np.testing.assert_allclose(metrics["prior_loss"], loss, rtol=1e-6)


@pytest.mark.parametrize("keys, message", [
    (("position", "goal"), "unknown observation key 'goal'; valid keys: ['position', 'velocity']"),
    (("velocty",), "unknown observation key 'velocty'"),
])
def test_unknown_prior_observation_key_fails_at_start(keys, message):
  builder = kl_svg0.KLSVG0Builder(dataclasses.replace(LEARNED, prior_observation_keys=keys))
  with pytest.raises(overrides.ConfigError) as error:
    builder.make_prior(SPEC)
  assert message in str(error.value)


@pytest.mark.parametrize("changes, message", [
    ({"prior": "learned"}, "prior='learned' needs prior_observation_keys"),
    ({"prior": "learned", "prior_observation_keys": ()}, "needs prior_observation_keys"),
    ({"prior": "learned", "prior_observation_keys": ("a", "a")}, "repeats a key"),
    ({"prior_observation_keys": ("position",)}, "only used by prior='learned'"),
    ({"prior": "learned", "prior_observation_keys": ("a",), "prior_learning_rate": 0.0},
     "prior_learning_rate=0.0"),
    ({"prior": "learned", "prior_observation_keys": ("a",), "prior_hidden_sizes": ()},
     "prior_hidden_sizes"),
])
def test_learned_prior_config_is_checked(changes, message):
  with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
    dataclasses.replace(CONFIG, **changes)


def test_several_updates_per_dispatch_equal_as_many_single_steps():
  batches = [b for _, b in zip(range(8), _batches(3))]
  single = _learner(iter(batches))
  for _ in range(8):
    single.step()
  scanned = _learner(iter(batches), config=dataclasses.replace(CONFIG, num_sgd_steps_per_step=4))
  scanned.step()
  scanned.step()
  expected, got = single.save(), scanned.save()
  assert int(got.steps) == 8
  assert scanned._counter.get_counts()["steps"] == 8  # pylint: disable=protected-access
  jax.tree_util.tree_map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6),
                         expected, got)


def test_updates_per_dispatch_must_be_positive():
  with pytest.raises(ValueError, match="num_sgd_steps_per_step=0 must be >= 1"):
    dataclasses.replace(CONFIG, num_sgd_steps_per_step=0)
