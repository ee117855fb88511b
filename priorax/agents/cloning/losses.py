"""Cloning losses: the student's likelihood of the expert's labels, or its cross-entropy.

Shapes: B examples (states, real or synthetic), D action dimensions. Everything is in the pre-tanh
space u (a = tanh(u)): since log π(tanh u|s) = log N(u; μ_π, σ_π²) − Σ log(1 − tanh²u) and the
last term does not depend on the student, maximising the likelihood of the expert's action tanh(μ_E)
is maximising log N(μ_E; μ_π, σ_π²), which is exact and finite even where tanh saturates.
"""

from typing import Callable, NamedTuple

import chex
import jax.numpy as jnp

from priorax.agents.cloning import types as cloning_types
from priorax.networks import distributions

_HALF_LOG_2PI = 0.5 * jnp.log(2.0 * jnp.pi)


class CloningStats(NamedTuple):
  """Diagnostics of a batch: the mean squared error of the student's mean and its mean std."""

  mean_squared_error: chex.Array
  student_std: chex.Array


def negative_log_likelihood(student: distributions.GaussianParams,
                            target: chex.Array) -> chex.Array:
  """−log N(u; μ_π, σ_π²), summed over D, per example.

  Behavioural cloning of a Gaussian expert from its mean action (Galashov et al. 2022,
  https://arxiv.org/abs/2210.06219, §3: D(π, π_E) = −E log π(a|s), a = μ_E(s)).

  Args:
    student: the student's pre-tanh Gaussian, fields [B, D].
    target: the label u [B, D].

  Returns:
    [B].
  """
  chex.assert_rank([student.mean, student.std, target], 2)
  chex.assert_equal_shape([student.mean, student.std, target])
  return -distributions.gaussian_log_prob(student, target)


def cross_entropy(expert: distributions.GaussianParams,
                  student: distributions.GaussianParams) -> chex.Array:
  """H[π_E(.|s) ‖ π(.|s)] = −E_{u~π_E} log π(u|s), in closed form, summed over D.

  H = Σ_d [log σ_π + ½ log 2π + (σ_E² + (μ_E − μ_π)²) / (2σ_π²)] = KL(π_E ‖ π) + H[π_E]; the
  state-conditional cross-entropy that Galashov et al. 2022 (§3, DAgger) found to work better than
  the likelihood of a single expert action.

  Args:
    expert: π_E's pre-tanh Gaussian, fields [B, D].
    student: π's pre-tanh Gaussian, fields [B, D].

  Returns:
    [B].
  """
  chex.assert_rank([expert.mean, expert.std, student.mean, student.std], 2)
  chex.assert_equal_shape([expert.mean, expert.std, student.mean, student.std])
  squared = jnp.square(expert.std) + jnp.square(expert.mean - student.mean)
  return jnp.sum(jnp.log(student.std) + _HALF_LOG_2PI + squared / (2.0 * jnp.square(student.std)),
                 axis=-1)


def cloning_loss(policy_params, batch: cloning_types.Demonstration, *,
                 policy_apply: Callable[..., distributions.GaussianParams],
                 loss: str) -> tuple[chex.Array, CloningStats]:
  """The weighted mean per-example loss over a batch of groups.

  L = Σ_{b,g} w_bg ℓ(s_bg) / Σ_{b,g} w_bg with w = 1 for real states and 1/M for synthetic ones:
  APC's objective −(1/L) Σ_i [log π(a_i|s_i) + (1/M) Σ_j log π(a'_ij|s_i + δ_ij)] up to the
  constant factor 2 (Galashov et al. 2022, Eq. 5); plain BC when G = 1.

  Args:
    policy_params: the student's params.
    batch: `Demonstration` with leaves [B, G, ...].
    policy_apply: (params, observation [N, ...]) -> GaussianParams [N, D].
    loss: "log_likelihood" or "cross_entropy".

  Returns:
    (scalar loss, CloningStats).
  """
  chex.assert_rank([batch.expert_mean, batch.expert_std, batch.weight], [3, 3, 2])
  flat = lambda x: jnp.reshape(x, (-1, *x.shape[2:]))
  observation = {k: flat(v) for k, v in batch.observation.items()}
  target = distributions.GaussianParams(flat(batch.expert_mean), flat(batch.expert_std))
  weight = flat(batch.weight)
  student = policy_apply(policy_params, observation)
  if loss == "log_likelihood":
    per_example = negative_log_likelihood(student, target.mean)
  elif loss == "cross_entropy":
    per_example = cross_entropy(target, student)
  else:
    raise ValueError(f"loss={loss!r} is unknown; expected log_likelihood or cross_entropy")
  value = jnp.sum(weight * per_example) / jnp.sum(weight)
  stats = CloningStats(
      mean_squared_error=jnp.sum(weight * jnp.mean(jnp.square(student.mean - target.mean), -1))
      / jnp.sum(weight),
      student_std=jnp.mean(student.std))
  return value, stats
