"""The `kl_svg0` Retrace learner: one step, hard target copies, learned prior, exact resume; the
config switch; the actor storing behaviour extras."""

import dataclasses

import dm_env
from dm_env import specs as dm_specs
import jax
import numpy as np
import pytest

from priorax import specs
from priorax.agents import actors
from priorax.agents import kl_svg0
from priorax.agents.kl_svg0 import sequence_learning
from priorax.agents.kl_svg0 import sequence_losses
from priorax.launchers import local
from priorax.replay.types import Step
from priorax.utils import checkpointing
from priorax.utils import counting

B, L = 4, 3  # Sequences per batch, transitions per sequence (L + 1 stored steps).
SPEC = specs.EnvironmentSpec(
    observations={"position": dm_specs.Array((3,), np.float32),
                  "velocity": dm_specs.Array((2,), np.float32)},
    actions=dm_specs.BoundedArray((2,), np.float32, -1.0, 1.0),
    rewards=dm_specs.Array((), np.float32), discounts=dm_specs.Array((), np.float32))
CONFIG = kl_svg0.KLSVG0Config(learner="retrace", policy_hidden_sizes=(8, 8),
                              critic_hidden_sizes=(8, 8), batch_size=B, sequence_length=L,
                              sequence_period=L, num_action_samples=3, target_update_period=2)
LEARNED = dataclasses.replace(CONFIG, prior="learned", prior_observation_keys=("position",),
                              prior_hidden_sizes=(8, 8))


def _batches(seed):
  """Random sequences; the first of each batch is padded after its second step."""
  rng = np.random.default_rng(seed)
  n = L + 1
  while True:
    u = rng.normal(size=(B, n, 2)).astype(np.float32)
    mask = np.ones((B, n), np.float32)
    mask[0, 2:] = 0.0
    yield Step(
        observation={k: rng.normal(size=(B, n, *s.shape)).astype(np.float32)
                     for k, s in SPEC.observations.items()},
        action=np.tanh(u), reward=rng.normal(size=(B, n)).astype(np.float32),
        discount=np.ones((B, n), np.float32), start_of_episode=np.zeros((B, n), bool), mask=mask,
        extras={sequence_losses.EXTRAS_LOG_PROB: rng.normal(size=(B, n)).astype(np.float32) - 2,
                sequence_losses.EXTRAS_PRE_TANH_ACTION: u})


def _learner(iterator, seed=0, config=CONFIG):
  builder = kl_svg0.KLSVG0Builder(config)
  return builder.make_learner(builder.make_networks(SPEC), builder.make_prior(SPEC), iterator,
                              jax.random.PRNGKey(seed), SPEC, counter=counting.Counter())


def _equal(a, b) -> bool:
  return all(jax.tree_util.tree_leaves(jax.tree_util.tree_map(
      lambda x, y: np.array_equal(np.asarray(x), np.asarray(y)), a, b)))


@pytest.mark.parametrize("config", [CONFIG, LEARNED], ids=["uniform", "learned"])
def test_step_is_finite_and_targets_are_hard_copies_every_period(config):
  learner = _learner(_batches(0), config=config)
  assert isinstance(learner, sequence_learning.KLSVG0RetraceLearner)
  initial = learner.save()
  assert isinstance(initial, sequence_learning.RetraceTrainingState)
  learner.step()
  one = learner.save()
  learner.check_finite()
  trained = ["policy", "critic"] + (["prior"] if config.prior == "learned" else [])
  for name in trained:
    assert not _equal(getattr(initial, f"{name}_params"), getattr(one, f"{name}_params")), name
    # Within a period, the targets keep the initial copy.
    assert _equal(getattr(one, f"target_{name}_params"), getattr(initial, f"{name}_params")), name
  learner.step()  # Update 2 = target_update_period: the targets become the online networks.
  two = learner.save()
  for name in trained:
    assert _equal(getattr(two, f"target_{name}_params"), getattr(two, f"{name}_params")), name
  assert int(two.steps) == 2
  learner.check_finite()


def test_restored_learner_gives_the_same_next_update_bit_for_bit(tmp_path):
  batches = [b for _, b in zip(range(4), _batches(1))]
  uninterrupted = _learner(iter(batches), config=LEARNED)
  for _ in range(3):
    uninterrupted.step()
  first = _learner(iter(batches[:3]), config=LEARNED)
  for _ in range(3):
    first.step()
  checkpointer = checkpointing.Checkpointer(str(tmp_path))
  checkpointer.save(3, {"learner_state": first.save()._asdict()})
  resumed = _learner(iter(batches[3:]), seed=99, config=LEARNED)
  local.restore_learner_state(resumed, checkpointer.load_latest()["learner_state"], "ckpt")
  uninterrupted.step()
  resumed.step()
  jax.tree_util.tree_map(np.testing.assert_array_equal, uninterrupted.save(), resumed.save())


def test_fixed_alpha_stays_fixed():
  learner = _learner(_batches(2), config=dataclasses.replace(CONFIG, tune_alpha=False,
                                                             init_alpha=1e-3))
  for _ in range(2):
    learner.step()
  np.testing.assert_allclose(np.exp(learner.save().log_alpha), 1e-3, rtol=1e-6)


@pytest.mark.parametrize("changes, message", [
    ({"learner": "sequence"}, "learner='sequence' is unknown; expected one of"),
    ({"n_step": 3}, "n_step=3 is for learner='transition'"),
    ({"sequence_period": 4}, "sequence_period=4 exceeds sequence_length=3"),
    ({"sequence_length": 0}, "sequence_length=0 must be >= 1"),
    ({"num_action_samples": 0}, "num_action_samples=0 must be >= 1"),
    ({"target_update_period": 0}, "target_update_period=0 must be >= 1"),
    ({"retrace_lambda": 1.5}, r"retrace_lambda=1.5 must lie in \[0, 1\]"),
    ({"entropy_cost": -0.1}, "entropy_cost=-0.1 must be >= 0"),
])
def test_retrace_config_is_checked(changes, message):
  with pytest.raises(ValueError, match=message):
    dataclasses.replace(CONFIG, **changes)


def test_replay_ratio_and_sizes_count_environment_steps():
  config = dataclasses.replace(CONFIG, batch_size=8, updates_per_step=0.5, sequence_length=10,
                               sequence_period=5, min_replay_size=100)
  # One sequence per 5 steps, sampled 8 · 0.5 · 5 = 20 times: 0.5 updates per environment step.
  assert config.samples_per_insert == 20.0
  (table,) = kl_svg0.KLSVG0Builder(config).make_replay_tables(SPEC)
  assert table.info.max_size == 1_000_000 // 5
  transition = kl_svg0.KLSVG0Config(batch_size=8, updates_per_step=0.5)
  assert transition.samples_per_insert == 4.0


class _RecordingAdder:

  def __init__(self):
    self.calls = []

  def add_first(self, timestep):
    del timestep

  def add(self, action, next_timestep, extras=()):
    self.calls.append((action, extras))


def test_actor_stores_the_behaviour_log_prob_and_pre_tanh_action():
  builder = kl_svg0.KLSVG0Builder(CONFIG)
  networks = builder.make_networks(SPEC)
  learner = _learner(_batches(0))
  adder = _RecordingAdder()
  actor = builder.make_actor(builder.make_policy(networks, evaluation=False), learner,
                             jax.random.PRNGKey(3), adder)
  observation = {k: np.full(s.shape, 0.5, np.float32) for k, s in SPEC.observations.items()}
  actor.observe_first(dm_env.restart(observation))
  action = actor.select_action(observation)
  actor.observe(action, dm_env.transition(0.0, observation))
  (stored_action, extras), = adder.calls
  u = np.asarray(extras[sequence_losses.EXTRAS_PRE_TANH_ACTION])
  np.testing.assert_allclose(np.tanh(u), stored_action, rtol=1e-6)
  gaussian = networks.policy_apply(learner.get_variables(["policy"])[0],
                                   {k: v[None] for k, v in observation.items()})
  from priorax.networks import distributions
  expected = distributions.tanh_gaussian_log_prob(gaussian, u[None])[0]
  np.testing.assert_allclose(extras[sequence_losses.EXTRAS_LOG_PROB], expected, rtol=1e-5)
  # The evaluation actor returns the mode alone to its caller.
  eval_actor = builder.make_actor(builder.make_policy(networks, evaluation=True), learner,
                                  jax.random.PRNGKey(4))
  np.testing.assert_allclose(eval_actor.select_action(observation), np.tanh(gaussian.mean[0]),
                             rtol=1e-6)


def test_generic_actor_without_extras_hands_the_adder_empty_extras():
  """The transition learner's actor: a plain policy, and `add` gets the default () extras."""
  adder = _RecordingAdder()
  client = actors.VariableClient(_StaticSource(), "policy")
  actor = actors.GenericActor(lambda params, key, obs: obs["x"] * params, client,
                              jax.random.PRNGKey(0), adder)
  actor.observe_first(dm_env.restart({"x": np.ones(2, np.float32)}))
  action = actor.select_action({"x": np.ones(2, np.float32)})
  actor.observe(action, dm_env.transition(0.0, {"x": np.ones(2, np.float32)}))
  np.testing.assert_allclose(adder.calls[0][0], [2.0, 2.0])
  assert adder.calls[0][1] == ()


class _StaticSource:

  def get_variables(self, names):
    return [np.float32(2.0) for _ in names]


def test_retrace_updates_per_dispatch_equal_as_many_single_steps():
  """The hard target copies every `target_update_period` updates happen inside the scan too."""
  batches = [b for _, b in zip(range(4), _batches(4))]
  single = _learner(iter(batches), config=LEARNED)
  for _ in range(4):
    single.step()
  scanned = _learner(iter(batches), config=dataclasses.replace(LEARNED, num_sgd_steps_per_step=4))
  scanned.step()
  expected, got = single.save(), scanned.save()
  assert int(got.steps) == 4
  jax.tree_util.tree_map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6),
                         expected, got)
