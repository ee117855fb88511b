"""Tanh-Gaussian densities and KLs against float64 references."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import integrate
from scipy import stats

from priorax.networks import distributions as d

jax.config.update("jax_enable_x64", False)

CASES = [
    dict(mean=[0.0], std=[1.0], u=[0.3]),
    dict(mean=[0.5, -1.0], std=[0.2, 2.0], u=[0.1, -3.0]),
    dict(mean=[2.0, 0.0, -0.5], std=[0.5, 0.1, 1.5], u=[8.0, -0.05, 1.0]),
]


@pytest.mark.parametrize("jit", [False, True])
@pytest.mark.parametrize("case", CASES)
def test_tanh_gaussian_log_prob_matches_change_of_variables(case, jit):
  mean, std, u = (np.asarray(case[k], np.float64) for k in ("mean", "std", "u"))
  # log π(a) = log N(u) − log|da/du| with da/du = 1 − tanh(u)² = cosh(u)⁻², in float64.
  expected = np.sum(stats.norm.logpdf(u, mean, std) + 2.0 * np.log(np.cosh(u)))
  fn = jax.jit(d.tanh_gaussian_log_prob) if jit else d.tanh_gaussian_log_prob
  got = fn(d.GaussianParams(jnp.asarray(mean, jnp.float32), jnp.asarray(std, jnp.float32)),
           jnp.asarray(u, jnp.float32))
  np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-4)


def test_tanh_log_det_is_stable_for_large_inputs():
  u = jnp.asarray([[30.0, -30.0]])
  got = d.tanh_log_det_jacobian(u)
  # log(1 − tanh(u)²) = −2 log cosh(u) → 2 log 2 − 2|u| for large |u|; summed over two entries.
  np.testing.assert_allclose(got, [4 * np.log(2.0) - 120.0], rtol=1e-5)
  assert np.all(np.isfinite(got))


@pytest.mark.parametrize("case", CASES)
def test_gaussian_kl_matches_numerical_integral(case):
  mean, std = np.asarray(case["mean"]), np.asarray(case["std"])
  q_mean, q_std = mean[::-1] * 0.5 + 0.1, std[::-1] * 1.3
  expected = 0.0
  for mp, sp, mq, sq in zip(mean, std, q_mean, q_std):
    integrand = lambda x: stats.norm.pdf(x, mp, sp) * (stats.norm.logpdf(x, mp, sp)
                                                       - stats.norm.logpdf(x, mq, sq))
    expected += integrate.quad(integrand, mp - 12 * sp, mp + 12 * sp)[0]
  got = d.gaussian_kl(d.GaussianParams(jnp.asarray(mean, jnp.float32), jnp.asarray(std, jnp.float32)),
                      d.GaussianParams(jnp.asarray(q_mean, jnp.float32),
                                       jnp.asarray(q_std, jnp.float32)))
  np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)


def test_kl_of_tanh_gaussians_equals_pre_tanh_kl_by_monte_carlo():
  """The closed form is used for tanh-Gaussians: check E_p[log p(a) − log q(a)] in action space."""
  p = d.GaussianParams(jnp.asarray([0.4, -0.2]), jnp.asarray([0.5, 0.9]))
  q = d.GaussianParams(jnp.asarray([-0.3, 0.1]), jnp.asarray([0.7, 0.6]))
  u = d.sample_pre_tanh(d.GaussianParams(jnp.broadcast_to(p.mean, (400_000, 2)),
                                         jnp.broadcast_to(p.std, (400_000, 2))),
                        jax.random.PRNGKey(0))
  # log q(a) at a = tanh(u) needs q's pre-image of a, which is u itself (same squashing).
  estimate = jnp.mean(d.tanh_gaussian_log_prob(p, u) - d.tanh_gaussian_log_prob(q, u))
  np.testing.assert_allclose(estimate, d.gaussian_kl(p, q), rtol=1e-2)


def test_sample_is_reparameterised():
  key = jax.random.PRNGKey(1)
  grad = jax.grad(lambda m: jnp.sum(d.sample_pre_tanh(d.GaussianParams(m, jnp.ones(3)), key)))(
      jnp.zeros(3))
  np.testing.assert_allclose(grad, np.ones(3))
