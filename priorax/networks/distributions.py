"""Tanh-squashed diagonal Gaussians as pure functions of (mean, std).

A policy head outputs the pre-squash Gaussian N(μ, σ²); actions are a = tanh(u), u ~ N(μ, σ²), so they
lie in the canonical box (-1, 1)^d. The density of a follows by change of variables:
  log π(a) = log N(u; μ, σ²) − Σ_i log(1 − tanh(u_i)²).
Because tanh is a bijection, the KL between two tanh-Gaussians on the same squashing equals the KL
between their pre-squash Gaussians, which has a closed form (`gaussian_kl`): no estimator is needed
when both the policy and the prior are of this family.
"""

from typing import NamedTuple

import chex
import jax
import jax.numpy as jnp

_LOG_2PI = jnp.log(2.0 * jnp.pi)


class GaussianParams(NamedTuple):
  """Pre-squash diagonal Gaussian, both fields of shape [..., D]."""

  mean: chex.Array
  std: chex.Array


def sample_pre_tanh(params: GaussianParams, key: chex.PRNGKey) -> chex.Array:
  """Reparameterised sample u = μ + σ ε, ε ~ N(0, I): gradients flow to μ and σ (SVG(0))."""
  noise = jax.random.normal(key, params.mean.shape, params.mean.dtype)
  return params.mean + params.std * noise


def gaussian_log_prob(params: GaussianParams, u: chex.Array) -> chex.Array:
  """log N(u; μ, σ²) summed over the last axis."""
  z = (u - params.mean) / params.std
  return jnp.sum(-0.5 * jnp.square(z) - jnp.log(params.std) - 0.5 * _LOG_2PI, axis=-1)


def tanh_log_det_jacobian(u: chex.Array) -> chex.Array:
  """Σ_i log(1 − tanh(u_i)²), computed stably as Σ 2(log 2 − u − softplus(−2u))."""
  return jnp.sum(2.0 * (jnp.log(2.0) - u - jax.nn.softplus(-2.0 * u)), axis=-1)


def tanh_gaussian_log_prob(params: GaussianParams, u: chex.Array) -> chex.Array:
  """log π(tanh(u)) for the pre-squash sample u (exact change of variables)."""
  return gaussian_log_prob(params, u) - tanh_log_det_jacobian(u)


def gaussian_kl(p: GaussianParams, q: GaussianParams) -> chex.Array:
  """KL(p ‖ q) of diagonal Gaussians, summed over the last axis.

  KL = Σ_i [log(σ_q/σ_p) + (σ_p² + (μ_p − μ_q)²) / (2σ_q²) − ½]. Equal to the KL between the
  tanh-squashed distributions (KL is invariant under the bijection tanh).
  """
  var_ratio = jnp.square(p.std / q.std)
  mean_term = jnp.square((p.mean - q.mean) / q.std)
  return 0.5 * jnp.sum(var_ratio + mean_term - 1.0 - jnp.log(var_ratio), axis=-1)
