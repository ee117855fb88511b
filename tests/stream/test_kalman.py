"""Tests for priorax.stream.kalman: recursions against float64 references, and drift learning."""

from absl.testing import parameterized
import jax
from jax.experimental import enable_x64
import jax.numpy as jnp
import numpy as np
import pytest

from priorax.stream import kalman


def _linear_gaussian(seed, n, d, k, noise_std):
  rng = np.random.default_rng(seed)
  phi = rng.normal(size=(n, d))
  w = rng.normal(size=(d, k))
  return phi, phi @ w + noise_std * rng.normal(size=(n, k))


class RecursionTest(parameterized.TestCase):

  def test_drift_predict_hand_computed(self):
    mean = jnp.array([[1.0, -2.0], [0.5, 0.0]])
    cov = jnp.array([[2.0, 0.5], [0.5, 1.0]])
    m, p = kalman.drift_predict(mean, cov, jnp.asarray(0.5), prior_variance=4.0)
    np.testing.assert_allclose(m, [[0.5, -1.0], [0.25, 0.0]])
    # P⁻ = 0.25 P + 0.75 · 4 · I.
    np.testing.assert_allclose(p, [[3.5, 0.125], [0.125, 3.25]])

  def test_single_observation_matches_textbook_update(self):
    rng = np.random.default_rng(0)
    a = rng.normal(size=(3, 3))
    cov = a @ a.T + np.eye(3)
    mean = rng.normal(size=(3, 2))
    phi, y = rng.normal(size=3), rng.normal(size=2)
    s = phi @ cov @ phi + 0.3
    gain = cov @ phi / s
    expected_mean = mean + np.outer(gain, y - phi @ mean)
    expected_cov = cov - np.outer(gain, phi @ cov)
    with enable_x64():
      m, p = kalman.kalman_update(jnp.asarray(mean), jnp.asarray(cov), jnp.asarray(phi[None]),
                                  jnp.asarray(y[None]), 0.3)
    np.testing.assert_allclose(m, expected_mean, rtol=1e-12)
    np.testing.assert_allclose(p, expected_cov, rtol=1e-12, atol=1e-12)

  @parameterized.named_parameters(("jit", True), ("no_jit", False))
  def test_gamma_one_equals_float64_batch_posterior(self, use_jit):
    prior_var, noise_var = 2.0, 0.25
    phi, y = _linear_gaussian(1, n=60, d=5, k=3, noise_std=0.5)
    # Numpy float64 reference: P = (ΦᵀΦ/s² + I/s_w²)⁻¹, m = PΦᵀY/s².
    ref_cov = np.linalg.inv(phi.T @ phi / noise_var + np.eye(5) / prior_var)
    ref_mean = ref_cov @ phi.T @ y / noise_var
    predict = jax.jit(kalman.drift_predict, static_argnums=3) if use_jit else kalman.drift_predict
    update = jax.jit(kalman.kalman_update, static_argnums=4) if use_jit else kalman.kalman_update
    with enable_x64():
      mean, cov = jnp.zeros((5, 3)), prior_var * jnp.eye(5)
      # Uneven batches, single observations included: batching must not matter when γ = 1.
      edges = [0, 1, 2, 9, 10, 30, 31, 60]
      for lo, hi in zip(edges[:-1], edges[1:]):
        mean, cov = predict(mean, cov, jnp.asarray(1.0), prior_var)
        mean, cov = update(mean, cov, jnp.asarray(phi[lo:hi]), jnp.asarray(y[lo:hi]), noise_var)
      assert mean.dtype == jnp.float64
    np.testing.assert_allclose(mean, ref_mean, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(cov, ref_cov, rtol=1e-10, atol=1e-12)

  def test_gamma_one_float32_close_to_batch_posterior(self):
    phi, y = _linear_gaussian(2, n=200, d=8, k=2, noise_std=1.0)
    phi, y = phi.astype(np.float32), y.astype(np.float32)
    ref_mean, ref_cov = kalman.batch_posterior(phi, y, 1.0, 1.0)
    mean, cov = jnp.zeros((8, 2)), jnp.eye(8)
    for lo in range(0, 200, 16):
      mean, cov = kalman.kalman_update(mean, cov, phi[lo:lo + 16], y[lo:lo + 16], 1.0)
    np.testing.assert_allclose(mean, ref_mean, atol=1e-4)
    np.testing.assert_allclose(cov, ref_cov, atol=1e-5)

  def test_drift_gradient_survives_where_gamma_rounds_to_one(self):
    # δ = 1e-9: γ = exp(−δ/2) is 1.0 in float32, yet the predictive must still depend on log δ.
    head = kalman.KalmanHead(kalman.KalmanHeadConfig(likelihood="regression",
                                                     drift_parameterisation="log_delta"), 2, 1)
    state = head.init(jax.random.PRNGKey(0))._replace(cov=0.01 * jnp.eye(2))
    x, y = jnp.ones((3, 2)), jnp.full((3, 1), 5.0)
    noise = jnp.zeros((1, 3, 1))
    grad = jax.grad(lambda ld: head._score((ld, jnp.zeros(())), {}, state, x, y, noise)[0])(
        jnp.log(jnp.asarray(1e-9)))
    self.assertEqual(float(kalman.gamma_from_log_delta(jnp.log(jnp.asarray(1e-9)))), 1.0)
    self.assertLess(float(grad), 0.0)  # A surprising target: more drift raises the likelihood.

  def test_drift_keeps_prior_variance_without_data(self):
    # With no observations, P⁻ relaxes geometrically to the stationary s_w² I.
    cov = 0.01 * jnp.eye(3)
    for _ in range(200):
      _, cov = kalman.drift_predict(jnp.zeros((3, 1)), cov, jnp.asarray(0.9), 3.0)
    np.testing.assert_allclose(cov, 3.0 * np.eye(3), rtol=1e-5)

  def test_regression_log_likelihood_matches_formula(self):
    rng = np.random.default_rng(3)
    mean, phi, y = rng.normal(size=(4, 2)), rng.normal(size=(5, 4)), rng.normal(size=(5, 2))
    cov = np.diag([0.5, 1.0, 1.5, 2.0])
    var = np.einsum("bd,de,be->b", phi, cov, phi)[:, None] + 0.1
    expected = np.sum(-0.5 * np.log(2 * np.pi * var) - 0.5 * (y - phi @ mean)**2 / var, axis=-1)
    with enable_x64():
      ll = kalman.regression_log_likelihood(jnp.asarray(mean), jnp.asarray(cov), jnp.asarray(phi),
                                            jnp.asarray(y), 0.1)
    np.testing.assert_allclose(ll, expected, rtol=1e-12)

  def test_classification_log_probs_zero_covariance_is_tempered_softmax(self):
    mean = jnp.array([[1.0, 0.0, -1.0], [0.5, 2.0, 0.0]])
    phi = jnp.array([[1.0, 1.0], [2.0, -1.0]])
    noise = jax.random.normal(jax.random.PRNGKey(0), (8, 2, 3))
    log_p = kalman.classification_log_probs(mean, jnp.zeros((2, 2)), phi, jnp.asarray(2.0), noise)
    np.testing.assert_allclose(log_p, jax.nn.log_softmax(phi @ mean / 2.0), rtol=1e-6)

  def test_classification_uncertainty_flattens_probabilities(self):
    mean = jnp.array([[3.0, 0.0]])
    phi = jnp.ones((1, 1))
    noise = jax.random.normal(jax.random.PRNGKey(1), (4000, 1, 2))
    sharp = kalman.classification_log_probs(mean, jnp.zeros((1, 1)), phi, jnp.asarray(1.0), noise)
    wide = kalman.classification_log_probs(mean, 25.0 * jnp.ones((1, 1)), phi, jnp.asarray(1.0),
                                           noise)
    self.assertLess(float(jnp.exp(wide[0, 0])), float(jnp.exp(sharp[0, 0])) - 0.1)


  def test_softmax_bound_has_the_softmax_gradient_and_curvature_one_over_s2(self):
    # float64: log N(ỹ; f, s²I) and log softmax(f)ᵧ share the gradient y − p₀ at f₀; the Gaussian's
    # Hessian is −I/s².
    rng = np.random.default_rng(4)
    f0, s2 = rng.normal(size=5), 3.0
    y = np.eye(5)[2]
    with enable_x64():
      target = kalman.softmax_bound_targets(jnp.asarray(f0[None]), jnp.asarray(y[None]), s2)[0]
      gauss = lambda f: -0.5 * jnp.sum((target - f)**2) / s2
      grad_gauss = jax.grad(gauss)(jnp.asarray(f0))
      grad_softmax = jax.grad(lambda f: jax.nn.log_softmax(f)[2])(jnp.asarray(f0))
      hessian = jax.hessian(gauss)(jnp.asarray(f0))
    np.testing.assert_allclose(grad_gauss, grad_softmax, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(grad_gauss, y - np.exp(f0) / np.exp(f0).sum(), rtol=1e-12)
    np.testing.assert_allclose(hessian, -np.eye(5) / s2, atol=1e-14)

  def test_softmax_bound_update_is_a_preconditioned_newton_step(self):
    # One example: m = m⁻ + P⁻φ (y − p₀)ᵀ s² / (φᵀP⁻φ + s²), P = P⁻ − P⁻φφᵀP⁻ / (φᵀP⁻φ + s²).
    rng = np.random.default_rng(5)
    a = rng.normal(size=(4, 4))
    cov = a @ a.T + np.eye(4)
    mean, phi, s2 = rng.normal(size=(4, 3)), rng.normal(size=4), 2.0
    y = np.eye(3)[1]
    f0 = phi @ mean
    p0 = np.exp(f0) / np.exp(f0).sum()
    denom = phi @ cov @ phi + s2
    expected_mean = mean + np.outer(cov @ phi, y - p0) * s2 / denom
    expected_cov = cov - np.outer(cov @ phi, cov @ phi) / denom
    with enable_x64():
      targets = kalman.softmax_bound_targets(jnp.asarray(f0[None]), jnp.asarray(y[None]), s2)
      m, p = kalman.kalman_update(jnp.asarray(mean), jnp.asarray(cov), jnp.asarray(phi[None]),
                                  targets, s2)
    np.testing.assert_allclose(m, expected_mean, rtol=1e-12)
    np.testing.assert_allclose(p, expected_cov, rtol=1e-12, atol=1e-12)


class ConfigTest(parameterized.TestCase):

  @parameterized.named_parameters(
      ("likelihood", dict(likelihood="poisson"), "likelihood"),
      ("variance", dict(noise_variance=0.0), "variances"),
      ("gamma", dict(initial_gamma=1.5), "initial_gamma"),
      ("samples", dict(num_samples=0), "num_samples"),
      ("objective", dict(drift_objective="elbo"), "drift_objective"),
      ("parameterisation", dict(drift_parameterisation="gamma"), "drift_parameterisation"),
      ("log_boundary", dict(initial_gamma=1.0, drift_parameterisation="log_delta"), "boundary"),
      ("temperature", dict(initial_temperature=0.0), "initial_temperature"),
      ("temperature_rate", dict(temperature_learning_rate=-1.0), "learning rates"),
      ("classification_likelihood", dict(classification_likelihood="probit"),
       "classification_likelihood"),
      ("bound_objective", dict(classification_likelihood="softmax_bound",
                               drift_objective="surrogate"), "softmax_bound"),
      ("estimate", dict(drift_estimate="smoothed"), "drift_estimate"),
      ("per_batch_log", dict(drift_estimate="per_batch", drift_parameterisation="log_delta"),
       "per_batch"),
      ("steps", dict(drift_steps=0), "drift_steps"))
  def test_rejects(self, kwargs, message):
    with self.assertRaisesRegex(ValueError, message):
      kalman.KalmanHeadConfig(**kwargs)


def _shift_regression_stream(seed, steps, batch, d, shift_every):
  """Linear-Gaussian stream whose true weights are redrawn every `shift_every` batches."""
  rng = np.random.default_rng(seed)
  xs, ys = [], []
  w = rng.normal(size=(d, 1))
  for t in range(steps):
    if shift_every and t > 0 and t % shift_every == 0:
      w = rng.normal(size=(d, 1))
    x = rng.normal(size=(batch, d))
    xs.append(x)
    ys.append(x @ w + 0.3 * rng.normal(size=(batch, 1)))
  return jnp.asarray(np.stack(xs), jnp.float32), jnp.asarray(np.stack(ys), jnp.float32)


def _run_head(config, xs, ys, d):
  head = kalman.KalmanHead(config, d, ys.shape[-1])

  def body(state, batch):
    return head.update(state, *batch)

  _, metrics = jax.lax.scan(body, head.init(jax.random.PRNGKey(0)), (xs, ys))
  return metrics


class DriftLearningTest(parameterized.TestCase):

  def test_learned_drift_beats_static_filter_on_shifting_stream(self):
    xs, ys = _shift_regression_stream(0, steps=300, batch=4, d=6, shift_every=50)
    learned = _run_head(kalman.KalmanHeadConfig(
        likelihood="regression", noise_variance=0.09, initial_gamma=0.99,
        drift_learning_rate=0.05), xs, ys, 6)
    static = _run_head(kalman.KalmanHeadConfig(
        likelihood="regression", noise_variance=0.09, initial_gamma=1.0, learn_drift=False),
        xs, ys, 6)
    np.testing.assert_allclose(static.gamma, 1.0)
    # The static filter averages over all past regimes; the drifting one forgets them.
    self.assertLess(float(jnp.mean(learned.error[100:])), 0.5 * float(jnp.mean(static.error[100:])))
    self.assertGreater(float(jnp.mean(learned.log_likelihood[100:])),
                       float(jnp.mean(static.log_likelihood[100:])))
    self.assertLess(float(learned.gamma[-1]), 0.99)

  @parameterized.named_parameters(("from_below_one", 0.99), ("from_one", 1.0))
  def test_learned_drift_reacts_to_a_shift_after_a_stationary_stretch(self, initial_gamma):
    # 200 stationary batches drive γ to 1; the true weights are then redrawn. The drift must leave
    # γ = 1 within a few batches (on log δ the gradient δ·∂L/∂δ had vanished, and γ stayed > 0.9999).
    xs, ys = _shift_regression_stream(3, steps=240, batch=4, d=6, shift_every=200)
    metrics = _run_head(kalman.KalmanHeadConfig(
        likelihood="regression", noise_variance=0.09, initial_gamma=initial_gamma,
        drift_learning_rate=0.01), xs, ys, 6)
    gamma = np.asarray(metrics.gamma)
    self.assertGreater(gamma[190:200].min(), 0.99)
    self.assertLess(gamma[200:215].min(), 0.95)
    # ... and the forgetting pays: the error right after the shift falls faster than the static one.
    static = _run_head(kalman.KalmanHeadConfig(
        likelihood="regression", noise_variance=0.09, initial_gamma=1.0, learn_drift=False),
        xs, ys, 6)
    self.assertLess(float(jnp.mean(metrics.error[200:240])),
                    0.5 * float(jnp.mean(static.error[200:240])))

  def test_log_delta_parameterisation_still_learns_drift(self):
    xs, ys = _shift_regression_stream(0, steps=300, batch=4, d=6, shift_every=50)
    metrics = _run_head(kalman.KalmanHeadConfig(
        likelihood="regression", noise_variance=0.09, initial_gamma=0.99,
        drift_learning_rate=0.05, drift_parameterisation="log_delta"), xs, ys, 6)
    self.assertLess(float(metrics.gamma[-1]), 0.99)

  def test_learned_drift_goes_to_one_on_stationary_stream(self):
    xs, ys = _shift_regression_stream(1, steps=300, batch=4, d=6, shift_every=0)
    metrics = _run_head(kalman.KalmanHeadConfig(
        likelihood="regression", noise_variance=0.09, initial_gamma=0.9,
        drift_learning_rate=0.05), xs, ys, 6)
    # Adam's normalised steps on δ jitter γ off 1 now and then; on average it stays at 1.
    self.assertGreater(float(jnp.mean(metrics.gamma[-100:])), 0.99)
    self.assertGreater(float(jnp.mean(metrics.gamma[-100:])), float(metrics.gamma[0]))

  def test_per_batch_drift_forgets_at_the_jump(self):
    # γₜ is estimated afresh on each batch from γ = 1, and the filter forgets by it before absorbing
    # the batch: at the batch where the weights jump, γₜ drops to ≈ 0 (a reset); on most other
    # batches it stays at 1 (it is a one-batch estimate, so it dips now and then).
    xs, ys = _shift_regression_stream(3, steps=240, batch=16, d=6, shift_every=100)
    config = kalman.KalmanHeadConfig(likelihood="regression", noise_variance=0.09, initial_gamma=1.0,
                                     drift_estimate="per_batch", drift_steps=5,
                                     drift_learning_rate=0.05)
    metrics = _run_head(config, xs, ys, 6)
    gamma = np.asarray(metrics.gamma)
    self.assertLess(gamma[100], 0.01)
    self.assertLess(gamma[200], 0.01)
    calm = np.r_[gamma[20:100], gamma[110:200], gamma[210:]]
    self.assertGreater(np.median(calm), 0.9999)
    static = _run_head(kalman.KalmanHeadConfig(
        likelihood="regression", noise_variance=0.09, initial_gamma=1.0, learn_drift=False),
        xs, ys, 6)
    self.assertLess(float(jnp.mean(metrics.error[100:])), 0.1 * float(jnp.mean(static.error[100:])))

  def test_softmax_bound_head_learns_a_linear_teacher(self):
    rng = np.random.default_rng(0)
    w = rng.normal(size=(5, 3)) * 2.0
    x = jnp.asarray(rng.normal(size=(100, 8, 5)), jnp.float32)
    y = jnp.asarray(np.argmax(np.asarray(x) @ w, axis=-1))
    errors = {}
    # (s² = 8: a flatter curvature than Böhning's bound, which is loose for confident predictions.)
    for likelihood, s2 in (("softmax_bound", 8.0), ("surrogate", 0.1)):
      config = kalman.KalmanHeadConfig(classification_likelihood=likelihood, noise_variance=s2,
                                       initial_gamma=1.0, learn_drift=False)
      errors[likelihood] = float(jnp.mean(_run_head(config, x, y, 5).error[-50:]))
    self.assertLess(errors["softmax_bound"], 0.08)
    self.assertLess(errors["softmax_bound"], errors["surrogate"])

  def test_classification_head_learns_and_metrics_are_pre_update(self):
    rng = np.random.default_rng(0)
    w = rng.normal(size=(5, 3)) * 2.0
    x = rng.normal(size=(100, 8, 5)).astype(np.float32)
    y = np.argmax(x @ w, axis=-1)
    config = kalman.KalmanHeadConfig(initial_gamma=0.999, num_samples=1024)
    head = kalman.KalmanHead(config, 5, 3)
    state = head.init(jax.random.PRNGKey(0))
    update = jax.jit(head.update)
    state, first = update(state, jnp.asarray(x[0]), jnp.asarray(y[0]))
    # Before any data the predictive is exchangeable in the classes: p(label) = 1/3 up to MC noise.
    np.testing.assert_allclose(first.log_likelihood, -np.log(3.0), atol=0.03)
    errors = []
    for t in range(1, 100):
      state, m = update(state, jnp.asarray(x[t]), jnp.asarray(y[t]))
      errors.append(float(m.error))
    self.assertLess(np.mean(errors[-30:]), 0.2)
    preds = jnp.argmax(head.predict(state, jnp.asarray(x[-1])), -1)
    self.assertGreater(float(jnp.mean(preds == y[-1])), 0.7)

  def test_temperature_and_drift_have_their_own_step_sizes(self):
    rng = np.random.default_rng(3)
    x = jnp.asarray(rng.normal(size=(6, 8, 5)), jnp.float32)
    y = jnp.asarray(rng.integers(0, 3, size=(6, 8)))

    def run(**kwargs):
      head = kalman.KalmanHead(kalman.KalmanHeadConfig(initial_gamma=0.99, **kwargs), 5, 3)
      state = head.init(jax.random.PRNGKey(0))
      for t in range(6):
        state, _ = head.update(state, x[t], y[t])
      return state

    init = kalman.KalmanHead(kalman.KalmanHeadConfig(initial_gamma=0.99, initial_temperature=0.2),
                             5, 3).init(jax.random.PRNGKey(0))
    self.assertAlmostEqual(float(jnp.exp(init.log_temperature)), 0.2, places=6)
    frozen_tau = run(drift_learning_rate=0.05, temperature_learning_rate=0.0)
    self.assertEqual(float(frozen_tau.log_temperature), 0.0)
    self.assertNotAlmostEqual(float(frozen_tau.drift), float(init.drift), places=4)
    frozen_gamma = run(drift_learning_rate=0.0, temperature_learning_rate=0.1)
    self.assertAlmostEqual(float(frozen_gamma.drift), float(init.drift), places=7)
    # Adam's first steps move log τ by about its step size each.
    self.assertGreater(abs(float(frozen_gamma.log_temperature)), 0.2)

  def test_feature_fine_tuning_moves_features_downhill(self):
    rng = np.random.default_rng(2)
    x = jnp.asarray(rng.normal(size=(16, 4)), jnp.float32)
    y = jnp.asarray(rng.integers(0, 3, size=16))

    def features(params, inputs):
      return jnp.tanh(inputs @ params["w"])

    params = {"w": jnp.asarray(rng.normal(size=(4, 6)), jnp.float32)}
    fixed = kalman.KalmanHead(kalman.KalmanHeadConfig(), 6, 3, features_fn=features)
    tuned = kalman.KalmanHead(kalman.KalmanHeadConfig(feature_learning_rate=0.5), 6, 3,
                              features_fn=features)
    # A state with some posterior information so that the features matter.
    state = tuned.init(jax.random.PRNGKey(0), params)
    state, _ = tuned.update(state, x, y)
    fixed_state = state
    new_state, before = tuned.update(state, x, y)
    _, unchanged = fixed.update(fixed_state, x, y)
    self.assertFalse(np.allclose(new_state.feature_params["w"], params["w"]))
    np.testing.assert_allclose(unchanged.log_likelihood, before.log_likelihood, rtol=1e-6)
    _, fixed_after = fixed.update(fixed_state._replace(key=new_state.key), x, y)
    rescored_state = fixed_state._replace(key=new_state.key,
                                          feature_params=new_state.feature_params)
    _, tuned_after = fixed.update(rescored_state, x, y)
    self.assertGreater(float(tuned_after.log_likelihood), float(fixed_after.log_likelihood))


if __name__ == "__main__":
  pytest.main([__file__])
