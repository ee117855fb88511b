"""REQ's losses against brute-force and float64 references (Jeong et al. 2020, §3)."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
from absl.testing import parameterized

from priorax.agents.req import config as config_lib
from priorax.agents.req import losses
from priorax.agents.req import networks as networks_lib
from priorax.networks import distributions
from tests.agents.req import req_test_utils


def _brute_force_dual(q: np.ndarray, epsilon: float) -> float:
  """argmin_τ g(τ) in float64 over a log grid, refined by golden-section search."""
  q = np.asarray(q, np.float64)

  def g(log_t):
    t = np.exp(log_t)
    z = q / t
    return t * epsilon + t * (np.max(z) + np.log(np.mean(np.exp(z - np.max(z)))))

  grid = np.linspace(-12.0, 12.0, 4801)
  best = grid[np.argmin([g(x) for x in grid])]
  lo, hi = best - 0.01, best + 0.01
  ratio = (np.sqrt(5.0) - 1.0) / 2.0
  for _ in range(100):
    a, b = hi - ratio * (hi - lo), lo + ratio * (hi - lo)
    if g(a) < g(b):
      hi = b
    else:
      lo = a
  return float(np.exp((lo + hi) / 2.0))


class TemperatureDualTest(parameterized.TestCase):

  @parameterized.product(epsilon=(0.1, 0.75, 1.5), scale=(0.01, 1.0, 100.0))
  def test_solution_matches_brute_force_minimiser(self, epsilon, scale):
    rng = np.random.default_rng(int(epsilon * 10 + scale))
    q = (rng.normal(size=(6, 20)) * scale * rng.uniform(0.3, 3.0, size=(6, 1))
         + rng.normal(size=(6, 1)) * 10 * scale).astype(np.float32)
    solve = jax.jit(losses.solve_temperature, static_argnums=(1, 2))
    temperature = np.asarray(solve(jnp.asarray(q), epsilon, 20))
    for row, t in zip(q, temperature):
      expected = _brute_force_dual(row, epsilon)
      np.testing.assert_allclose(t, expected, rtol=2e-3)
      # At the solution KL(w ‖ uniform) = ε.
      w = jax.nn.softmax(row / t)
      kl = float(jnp.sum(w * jnp.log(w * len(row))))
      np.testing.assert_allclose(kl, epsilon, rtol=2e-3, atol=1e-4)

  def test_dual_value_is_minimal_at_solution(self):
    q = jnp.asarray(np.random.default_rng(0).normal(size=(1, 30)), jnp.float32)
    t = losses.solve_temperature(q, 0.75, 20)[0]
    g = lambda tau: losses.temperature_dual(tau, q[0], 0.75)
    for factor in (0.9, 0.99, 1.01, 1.1):
      self.assertLess(float(g(t)), float(g(t * factor)))

  def test_no_gradient_through_temperature(self):
    q = jnp.asarray(np.random.default_rng(1).normal(size=(3, 10)), jnp.float32)
    grad = jax.grad(lambda q: jnp.sum(losses.solve_temperature(q, 0.5, 10)))(q)
    np.testing.assert_array_equal(grad, np.zeros_like(q))


class WeightedValueTest(parameterized.TestCase):
  """V(s) = Σ_j w_j Q(s, a_j) against E_prior[exp(Q/τ) Q] / E_prior[exp(Q/τ)]."""

  def test_large_m_approaches_exact_expectation_on_quadratic_q(self):
    # Prior N(μ, σ²) on a 1-D pre-tanh action, Q(a) = −c (a − a*)² with a = u (no squashing here:
    # the identity is about the weights). Exact E_prior[exp(Q/τ) Q]/E_prior[exp(Q/τ)] by float64
    # quadrature on a fine grid.
    mu, sigma, c, a_star, tau = 0.2, 0.7, 2.0, 0.9, 0.5
    grid = np.linspace(mu - 12 * sigma, mu + 12 * sigma, 200_001)
    density = np.exp(-0.5 * ((grid - mu) / sigma) ** 2)
    q_grid = -c * (grid - a_star) ** 2
    weights = density * np.exp(q_grid / tau)
    exact = float(np.sum(weights * q_grid) / np.sum(weights))
    samples = mu + sigma * np.random.default_rng(0).normal(size=(1, 200_000))
    q = jnp.asarray(-c * (samples - a_star) ** 2, jnp.float32)
    value = float(losses.weighted_value(q, jnp.asarray([tau], jnp.float32))[0])
    np.testing.assert_allclose(value, exact, rtol=1e-2)
    # And small M is visibly worse on average than large M (the estimator is consistent).
    small = float(jnp.mean(losses.weighted_value(q.reshape(-1, 5), jnp.full((40_000,), tau))))
    self.assertGreater(abs(small - exact), abs(value - exact))

  def test_epsilon_to_zero_gives_mean_over_prior_samples(self):
    q = jnp.asarray(np.random.default_rng(2).normal(size=(4, 20)) * 3.0, jnp.float32)
    for epsilon in (0.0, 1e-10):
      temperature = losses.solve_temperature(q, epsilon, 20)
      value = losses.weighted_value(q, temperature)
      np.testing.assert_allclose(value, jnp.mean(q, axis=1), atol=1e-3)

  def test_large_epsilon_gives_max(self):
    q = jnp.asarray(np.random.default_rng(3).normal(size=(4, 20)), jnp.float32)
    # KL(w ‖ uniform) ≤ log M: a bound near it puts all weight on the best sample.
    temperature = losses.solve_temperature(q, float(np.log(20)) - 1e-4, 50)
    np.testing.assert_allclose(losses.weighted_value(q, temperature), jnp.max(q, axis=1),
                               atol=1e-2)


class DecoupledKLTest(parameterized.TestCase):

  def test_against_hand_computation(self):
    target = distributions.GaussianParams(jnp.asarray([[0.0, 1.0]]), jnp.asarray([[1.0, 0.5]]))
    online = distributions.GaussianParams(jnp.asarray([[0.5, 1.0]]), jnp.asarray([[2.0, 0.5]]))
    kl_mean, kl_stddev = losses.decoupled_kl(target, online)
    # KL_μ = Σ (μ − μ')² / (2σ'²) = 0.25/2 + 0 = 0.125.
    np.testing.assert_allclose(kl_mean, [0.125], rtol=1e-6)
    # KL_Σ = Σ [log(σ/σ') + σ'²/(2σ²) − ½] = log 2 + 1/8 − 1/2 + 0.
    np.testing.assert_allclose(kl_stddev, [np.log(2.0) + 0.125 - 0.5], rtol=1e-6)

  def test_each_kl_moves_with_its_own_parameter(self):
    target = distributions.GaussianParams(jnp.zeros((1, 3)), jnp.ones((1, 3)))
    mean_moved = distributions.GaussianParams(jnp.ones((1, 3)), jnp.ones((1, 3)))
    std_moved = distributions.GaussianParams(jnp.zeros((1, 3)), 2 * jnp.ones((1, 3)))
    self.assertEqual(float(losses.decoupled_kl(target, mean_moved)[1][0]), 0.0)
    self.assertEqual(float(losses.decoupled_kl(target, std_moved)[0][0]), 0.0)


class ResampleTest(parameterized.TestCase):

  def test_picks_argmax_as_temperature_goes_to_zero(self):
    q = jnp.asarray([0.1, 0.5, 0.45, -1.0, 0.3])
    keys = jax.random.split(jax.random.PRNGKey(0), 200)
    picks = jax.vmap(lambda k: losses.resample(k, q, jnp.asarray(1e-4)))(keys)
    np.testing.assert_array_equal(picks, np.full(200, 1))

  def test_frequencies_follow_weights(self):
    q = jnp.asarray([0.0, 1.0, 2.0])
    keys = jax.random.split(jax.random.PRNGKey(1), 20_000)
    picks = np.asarray(jax.vmap(lambda k: losses.resample(k, q, jnp.asarray(1.0)))(keys))
    frequencies = np.bincount(picks, minlength=3) / len(picks)
    np.testing.assert_allclose(frequencies, jax.nn.softmax(q), atol=0.015)


class LossTest(parameterized.TestCase):
  """The critic and prior losses on a tiny network, jitted and not."""

  def setUp(self):
    super().setUp()
    self.config = config_lib.REQConfig(prior_hidden_sizes=(8,), critic_hidden_sizes=(8,),
                                       num_samples=4)
    spec = req_test_utils.environment_spec(observation_size=3, action_size=2)
    self.networks = networks_lib.make_networks(spec, self.config)
    keys = jax.random.split(jax.random.PRNGKey(0), 3)
    self.prior_params = self.networks.prior_init(keys[0])
    self.critic_params = self.networks.critic_init(keys[1])
    self.batch = req_test_utils.random_transitions(keys[2], batch=5, observation_size=3,
                                                   action_size=2)

  @parameterized.parameters(True, False)
  def test_critic_loss_is_half_mean_squared_td_error(self, jit):
    kwargs = dict(networks=self.networks, num_samples=4, epsilon=0.75, dual_steps=20)
    fn = lambda *a: losses.critic_loss(*a, **kwargs)
    fn = jax.jit(fn) if jit else fn
    key = jax.random.PRNGKey(3)
    loss, stats = fn(self.critic_params, self.critic_params, self.prior_params, self.batch, key)
    # Reference: the same samples (same key) evaluated outside the loss.
    samples = losses.evaluate_prior_samples(self.prior_params, self.critic_params,
                                            self.batch.next_observation, key, **kwargs)
    y = self.batch.reward + self.batch.discount * samples.value
    q = self.networks.critic_apply(self.critic_params, self.batch.observation, self.batch.action)
    np.testing.assert_allclose(loss, 0.5 * np.mean((q - y) ** 2), rtol=1e-5)
    np.testing.assert_allclose(stats.target_mean, np.mean(y), rtol=1e-5)

  @parameterized.parameters(True, False)
  def test_prior_loss_filters_by_advantage_and_trains_duals(self, jit):
    kwargs = dict(networks=self.networks, num_samples=4, epsilon=0.75, dual_steps=20,
                  epsilon_mean=0.01, epsilon_stddev=1e-5, expert_loss_weight=1.0)
    duals = losses.DualParams(jnp.asarray(0.5), jnp.asarray(0.5))
    fn = lambda p, d, e: losses.prior_loss(p, d, self.prior_params, self.critic_params,
                                           self.batch.observation, self.batch.action, e,
                                           jax.random.PRNGKey(4), **kwargs)
    fn = jax.jit(fn) if jit else fn
    loss, stats = fn(self.prior_params, duals, None)
    self.assertTrue(np.isfinite(loss))
    self.assertEqual(float(stats.expert_loss), 0.0)
    # At the target itself both KLs are zero, so the dual loss is α_μ ε_μ + α_Σ ε_Σ.
    np.testing.assert_allclose(stats.kl_mean, 0.0, atol=1e-7)
    grads = jax.grad(lambda d: fn(self.prior_params, d, None)[0])(duals)
    np.testing.assert_allclose(grads.alpha_mean, 0.01 * jax.nn.sigmoid(0.5), rtol=1e-4)
    # Hand reference of the filtered regression term.
    samples = losses.evaluate_prior_samples(
        self.prior_params, self.critic_params, self.batch.observation, jax.random.PRNGKey(4),
        networks=self.networks, num_samples=4, epsilon=0.75, dual_steps=20)
    advantage = self.networks.critic_apply(self.critic_params, self.batch.observation,
                                           self.batch.action) - samples.value
    gaussian = self.networks.prior_apply(self.prior_params, self.batch.observation)
    u = np.arctanh(np.clip(self.batch.action, -losses.ACTION_CLIP, losses.ACTION_CLIP))
    log_prob = 2 * distributions.gaussian_log_prob(gaussian, u)
    expected = -np.mean((np.asarray(advantage) >= 0) * np.asarray(log_prob))
    np.testing.assert_allclose(stats.regression_loss, expected, rtol=1e-5)
    # With an expert, its term enters with its own filter.
    _, with_expert = fn(self.prior_params, duals, jnp.zeros_like(self.batch.action))
    self.assertNotEqual(float(with_expert.expert_loss), 0.0)

  def test_kl_penalty_gradient_is_alpha_times_kl_gradient(self):
    # The penalty sg(α)·KL and the dual term α(ε − sg KL) cancel in value (α ε remains), but not
    # in gradient: the prior's gradient carries α ∇KL, the duals' ε − KL.
    moved = jax.tree_util.tree_map(lambda x: x + 0.3, self.prior_params)
    kwargs = dict(networks=self.networks, num_samples=4, epsilon=0.75, dual_steps=20,
                  epsilon_mean=0.0, epsilon_stddev=0.0, expert_loss_weight=0.0)

    def total(p, d):
      return losses.prior_loss(p, d, self.prior_params, self.critic_params,
                               self.batch.observation, self.batch.action, None,
                               jax.random.PRNGKey(5), **kwargs)[0]

    def kl(p):
      target = self.networks.prior_apply(self.prior_params, self.batch.observation)
      online = self.networks.prior_apply(p, self.batch.observation)
      kl_mean, kl_stddev = losses.decoupled_kl(target, online)
      return jnp.mean(kl_mean) + jnp.mean(kl_stddev)

    big = losses.DualParams(jnp.asarray(3.0), jnp.asarray(3.0))
    small = losses.DualParams(jnp.asarray(-3.0), jnp.asarray(-3.0))
    difference = jax.tree_util.tree_map(jnp.subtract, jax.grad(total)(moved, big),
                                        jax.grad(total)(moved, small))
    scale = losses.project_dual(3.0) - losses.project_dual(-3.0)
    expected = jax.tree_util.tree_map(lambda g: scale * g, jax.grad(kl)(moved))
    self.assertGreater(float(kl(moved)), 0.0)
    chex.assert_trees_all_close(difference, expected, rtol=1e-3, atol=1e-6)
    dual_grads = jax.grad(total, argnums=1)(moved, big)
    np.testing.assert_allclose(dual_grads.alpha_mean + dual_grads.alpha_stddev,
                               -jax.nn.sigmoid(3.0) * kl(moved), rtol=1e-4)
