"""The `kl_svg0` learner: one step, exact resume from a checkpoint file, the fixed prior."""

import dataclasses

import jax
import numpy as np
import pytest

from priorax import types
from priorax.agents import kl_svg0
from priorax.launchers import local
from priorax.utils import checkpointing
from priorax.utils import counting

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


def _batches(seed):
  rng = np.random.default_rng(seed)
  while True:
    obs = lambda: {k: rng.normal(size=(B, *s.shape)).astype(np.float32)
                   for k, s in SPEC.observations.items()}
    yield types.Transition(obs(), rng.uniform(-1, 1, (B, 2)).astype(np.float32),
                           rng.normal(size=B).astype(np.float32),
                           np.full(B, 0.99, np.float32), obs())


def _learner(iterator, seed=0, config=CONFIG):
  builder = kl_svg0.KLSVG0Builder(config)
  return builder.make_learner(builder.make_networks(SPEC), builder.make_prior(SPEC), iterator,
                              jax.random.PRNGKey(seed), SPEC, counter=counting.Counter())


def test_step_updates_every_network_and_keeps_losses_finite():
  learner = _learner(_batches(0))
  before = learner.save()
  learner.step()
  after = learner.save()
  for name in ("policy_params", "critic_params", "target_critic_params", "log_alpha"):
    changed = jax.tree_util.tree_map(lambda a, b: np.any(a != b), getattr(before, name),
                                     getattr(after, name))
    assert any(jax.tree_util.tree_leaves(changed)), name
  assert int(after.steps) == 1
  learner.check_finite()


def test_restored_learner_gives_the_same_next_update_bit_for_bit(tmp_path):
  batches = list(zip(range(4), _batches(1)))
  uninterrupted = _learner(iter(b for _, b in batches))
  for _ in range(3):
    uninterrupted.step()

  first = _learner(iter(b for _, b in batches[:3]))
  for _ in range(3):
    first.step()
  checkpointer = checkpointing.Checkpointer(str(tmp_path))
  checkpointer.save(3, {"learner_state": first.save()._asdict()})
  # A fresh learner with a different seed: everything must come from the checkpoint file.
  resumed = _learner(iter([batches[3][1]]), seed=99)
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
