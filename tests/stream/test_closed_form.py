"""Tests for priorax.stream.closed_form: ridge solution, envelope gradient, streaming statistics."""

from absl.testing import parameterized
import jax
from jax.experimental import enable_x64
import jax.numpy as jnp
import numpy as np
import pytest

from priorax.stream import closed_form as cf


def _features(params, x):
  return jnp.tanh(x @ params["w1"] + params["b1"])


def _problem(seed, n=64, d_in=3, d=8, k=2):
  rng = np.random.default_rng(seed)
  params = {"w1": rng.normal(size=(d_in, d)), "b1": rng.normal(size=d) * 0.1}
  x = rng.normal(size=(n, d_in))
  y = np.stack([np.sin(2 * x[:, 0]), x[:, 1] * x[:, 2]], -1)[:, :k]
  return params, x, y


class RidgeTest(parameterized.TestCase):

  @parameterized.named_parameters(("jit", True), ("no_jit", False))
  def test_ridge_solution_matches_numpy_float64(self, use_jit):
    rng = np.random.default_rng(0)
    phi, y, beta = rng.normal(size=(50, 6)), rng.normal(size=(50, 3)), 0.05
    expected = np.linalg.solve(phi.T @ phi + 50 * beta * np.eye(6), phi.T @ y)
    fn = jax.jit(cf.ridge_solution, static_argnums=2) if use_jit else cf.ridge_solution
    with enable_x64():
      w = fn(jnp.asarray(phi), jnp.asarray(y), beta)
    np.testing.assert_allclose(w, expected, rtol=1e-10)
    # Float32 agrees to float32 precision.
    w32 = fn(jnp.asarray(phi, jnp.float32), jnp.asarray(y, jnp.float32), beta)
    np.testing.assert_allclose(w32, expected, rtol=1e-4, atol=1e-5)

  def test_ridge_solution_minimises_ridge_loss(self):
    rng = np.random.default_rng(1)
    phi, y = jnp.asarray(rng.normal(size=(40, 5))), jnp.asarray(rng.normal(size=(40, 2)))
    with enable_x64():
      phi, y = jnp.asarray(np.asarray(phi, np.float64)), jnp.asarray(np.asarray(y, np.float64))
      w = cf.ridge_solution(phi, y, 0.1)
      grad_w = jax.grad(cf.ridge_loss)(w, phi, y, 0.1)
      np.testing.assert_allclose(grad_w, 0.0, atol=1e-12)
      perturbed = w + 1e-2 * jnp.asarray(rng.normal(size=w.shape))
      self.assertGreater(float(cf.ridge_loss(perturbed, phi, y, 0.1)),
                         float(cf.ridge_loss(w, phi, y, 0.1)))

  def test_envelope_gradient_equals_total_gradient(self):
    params, x, y = _problem(2)
    beta = 0.01
    with enable_x64():
      params = jax.tree_util.tree_map(jnp.asarray, params)
      x, y = jnp.asarray(x), jnp.asarray(y)

      def total(p):  # Differentiates through W*(θ) = (ΦᵀΦ + NβI)⁻¹ΦᵀY.
        phi = _features(p, x)
        return cf.ridge_loss(cf.ridge_solution(phi, y, beta), phi, y, beta)

      w_star = cf.ridge_solution(_features(params, x), y, beta)

      def partial(p, w):  # W held fixed.
        return cf.ridge_loss(w, _features(p, x), y, beta)

      g_total = jax.grad(total)(params)
      g_partial = jax.grad(partial)(params, w_star)
      g_elsewhere = jax.grad(partial)(params, 0.5 * w_star)
    for key in params:
      np.testing.assert_allclose(g_partial[key], g_total[key], rtol=1e-8, atol=1e-12)
      # The identity holds only at the optimum: at another W the partial gradient differs.
      self.assertGreater(float(jnp.max(jnp.abs(g_elsewhere[key] - g_total[key]))), 1e-3)

  def test_streaming_statistics_without_forgetting_equal_full_ridge(self):
    params, x, y = _problem(3, n=60)
    config = cf.ClosedFormConfig(beta=0.02, forgetting=1.0, backbone_learning_rate=0.0)
    learner = cf.ClosedFormLastLayer(config, _features, 8, 2)
    with enable_x64():
      state = learner.init(jax.tree_util.tree_map(jnp.asarray, params))
      for lo in range(0, 60, 20):
        state, _ = learner.update(state, jnp.asarray(x[lo:lo + 20]), jnp.asarray(y[lo:lo + 20]))
      phi = np.tanh(x @ params["w1"] + params["b1"])
    expected = np.linalg.solve(phi.T @ phi + 60 * 0.02 * np.eye(8), phi.T @ y)
    np.testing.assert_allclose(state.w, expected, rtol=1e-9)
    np.testing.assert_allclose(state.count, 60.0)

  def test_forgetting_weights_recent_batches(self):
    # Two batches with contradictory targets: with λ < 1 the solution leans towards the later one.
    params, x, y = _problem(4, n=40)
    learner = cf.ClosedFormLastLayer(
        cf.ClosedFormConfig(beta=1e-3, forgetting=0.1, backbone_learning_rate=0.0), _features, 8, 2)
    state = learner.init(jax.tree_util.tree_map(lambda a: jnp.asarray(a, jnp.float32), params))
    xb = jnp.asarray(x[:20], jnp.float32)
    state, _ = learner.update(state, xb, jnp.ones((20, 2)))
    state, _ = learner.update(state, xb, -jnp.ones((20, 2)))
    self.assertLess(float(jnp.mean(learner.predict(state, xb))), -0.6)

  def test_backbone_step_lowers_the_loss(self):
    params, x, y = _problem(5, n=128)
    learner = cf.ClosedFormLastLayer(cf.ClosedFormConfig(beta=1e-3, forgetting=1.0,
                                                         backbone_learning_rate=0.5),
                                     _features, 8, 2)
    params = jax.tree_util.tree_map(lambda a: jnp.asarray(a, jnp.float32), params)
    x, y = jnp.asarray(x, jnp.float32), jnp.asarray(y, jnp.float32)
    state = learner.init(params)
    update = jax.jit(learner.update)
    losses = []
    for _ in range(200):
      state, metrics = update(state, x, y)
      losses.append(float(metrics.loss))
    self.assertLess(losses[-1], 0.7 * losses[0])
    self.assertFalse(np.allclose(state.backbone_params["w1"], params["w1"]))

  @parameterized.named_parameters(
      ("beta", dict(beta=0.0), "beta"),
      ("forgetting", dict(forgetting=1.5), "forgetting"),
      ("lr", dict(backbone_learning_rate=-1.0), "backbone_learning_rate"))
  def test_config_rejects(self, kwargs, message):
    with self.assertRaisesRegex(ValueError, message):
      cf.ClosedFormConfig(**kwargs)


if __name__ == "__main__":
  pytest.main([__file__])
