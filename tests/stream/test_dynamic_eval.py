"""Tests for priorax.stream.dynamic_eval: predict-then-learn evaluation of a recurrent model."""

from absl.testing import parameterized
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from priorax.stream import dynamic_eval as de

V = 6


def _setup(seed=0, length=513, hidden=16, **kwargs):
  init, unroll, initial_state = de.make_lstm_model(V, hidden)
  seq, _ = de.drifting_markov_sequence(seed, length, V, **kwargs)
  params = init(jax.random.PRNGKey(seed), jnp.asarray(seq[:8]))
  return unroll, initial_state, params, jnp.asarray(seq[:-1]), jnp.asarray(seq[1:])


class DynamicEvalTest(parameterized.TestCase):

  def test_chunk_log_loss_hand_computed(self):
    logits = jnp.log(jnp.array([[0.5, 0.25, 0.25], [0.1, 0.1, 0.8]]))
    np.testing.assert_allclose(de.chunk_log_loss(logits, jnp.array([0, 2])),
                               [np.log(2.0), -np.log(0.8)], rtol=1e-6)

  def test_zero_learning_rate_is_static_full_unroll(self):
    unroll, initial_state, params, x, y = _setup()
    out = de.dynamic_evaluation(unroll, params, x, y, initial_state(),
                                de.DynamicEvalConfig(learning_rate=0.0, chunk_length=32))
    logits, _ = unroll(params, x, initial_state())
    np.testing.assert_allclose(out.nll.ravel(), de.chunk_log_loss(logits, y), rtol=1e-5, atol=1e-6)
    jax.tree_util.tree_map(np.testing.assert_array_equal, out.params, params)

  def test_predicts_before_learning(self):
    unroll, initial_state, params, x, y = _setup()
    static = de.dynamic_evaluation(unroll, params, x, y, initial_state(),
                                   de.DynamicEvalConfig(learning_rate=0.0, chunk_length=32))
    dynamic = de.dynamic_evaluation(unroll, params, x, y, initial_state(),
                                    de.DynamicEvalConfig(learning_rate=0.5, chunk_length=32))
    np.testing.assert_allclose(dynamic.nll[0], static.nll[0], rtol=1e-6)
    self.assertFalse(np.allclose(dynamic.nll[1], static.nll[1]))

  def test_only_trainable_modules_move(self):
    unroll, initial_state, params, x, y = _setup()
    out = jax.jit(lambda p: de.dynamic_evaluation(
        unroll, p, x, y, initial_state(),
        de.DynamicEvalConfig(learning_rate=0.1, chunk_length=32, trainable_prefix="mlp")))(params)
    for module in params:
      moved = any(not np.array_equal(out.params[module][k], params[module][k])
                  for k in params[module])
      self.assertEqual(moved, module.startswith("mlp"), module)

  def test_dynamic_evaluation_lowers_online_log_loss(self):
    # An untrained model on a sparse Markov chain: online adaptation must beat the static model.
    unroll, initial_state, params, x, y = _setup(length=1025, concentration=0.1)
    def run(lr):
      return de.dynamic_evaluation(unroll, params, x, y, initial_state(),
                                   de.DynamicEvalConfig(learning_rate=lr, chunk_length=16)).nll

    static, dynamic = run(0.0), run(0.3)
    self.assertLess(float(dynamic[-16:].mean()), float(static[-16:].mean()) - 0.3)

  def test_static_unroll_matches_dynamic_unroll(self):
    unroll, initial_state, params, x, _ = _setup()
    _, static_unroll, _ = de.make_lstm_model(V, 16, static_unroll=True)
    np.testing.assert_allclose(static_unroll(params, x[:20], initial_state())[0],
                               unroll(params, x[:20], initial_state())[0], rtol=1e-5, atol=1e-6)

  def test_markov_source_switches_regime(self):
    seq, regime = de.drifting_markov_sequence(0, 400, V, switch_every=100)
    np.testing.assert_array_equal(regime[[0, 99, 100, 199, 200]], [0, 0, 1, 1, 0])
    _, gradual = de.drifting_markov_sequence(0, 101, V, gradual=True)
    np.testing.assert_allclose(gradual[[0, 50, 100]], [0.0, 0.5, 1.0])
    self.assertTrue(set(np.unique(seq)) <= set(range(V)))

  @parameterized.named_parameters(("lr", dict(learning_rate=-1.0), "learning_rate"),
                                  ("chunk", dict(chunk_length=0), "chunk_length"))
  def test_config_rejects(self, kwargs, message):
    with self.assertRaisesRegex(ValueError, message):
      de.DynamicEvalConfig(**kwargs)


if __name__ == "__main__":
  pytest.main([__file__])
