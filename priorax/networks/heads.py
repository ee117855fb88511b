"""Distribution heads."""

from typing import Optional

import chex
import haiku as hk
import jax
import jax.numpy as jnp

from priorax.networks import distributions


class GaussianHead(hk.Module):
  """Outputs a pre-squash diagonal Gaussian: μ unconstrained, σ = softplus(·) + min_scale.

  The floor on σ keeps log-probabilities and KLs finite (Acme's NormalTanhDistribution uses the
  same parameterisation).
  """

  def __init__(self, action_size: int, *, min_scale: float = 1e-3, name: Optional[str] = None):
    super().__init__(name=name)
    if min_scale <= 0:
      raise ValueError(f"min_scale must be > 0, got {min_scale}")
    self._action_size = action_size
    self._min_scale = min_scale

  def __call__(self, inputs: chex.Array) -> distributions.GaussianParams:
    w_init = hk.initializers.VarianceScaling(1e-4, "fan_in", "truncated_normal")
    mean = hk.Linear(self._action_size, w_init=w_init, name="mean")(inputs)
    raw_scale = hk.Linear(self._action_size, w_init=w_init, name="scale")(inputs)
    return distributions.GaussianParams(mean, jax.nn.softplus(raw_scale) + self._min_scale)


class ScalarHead(hk.Module):
  """A linear layer to one output per example: [B, F] → [B]."""

  def __call__(self, inputs: chex.Array) -> chex.Array:
    return jnp.squeeze(hk.Linear(1)(inputs), axis=-1)
