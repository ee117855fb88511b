"""Cloning losses against float64 references, jitted and not."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from priorax.agents.cloning import losses
from priorax.agents.cloning import types as cloning_types
from priorax.networks import distributions

B, D = 5, 3


def _gaussians(seed):
  rng = np.random.default_rng(seed)
  make = lambda: distributions.GaussianParams(
      rng.normal(size=(B, D)).astype(np.float32),
      rng.uniform(0.2, 2.0, size=(B, D)).astype(np.float32))
  return make(), make()


def _maybe_jit(fn, jitted):
  return jax.jit(fn) if jitted else fn


@pytest.mark.parametrize("jitted", [False, True])
def test_negative_log_likelihood_matches_float64_reference(jitted):
  student, expert = _gaussians(0)
  target = expert.mean
  mean, std = student.mean.astype(np.float64), student.std.astype(np.float64)
  expected = np.sum(0.5 * ((target - mean) / std) ** 2 + np.log(std) + 0.5 * np.log(2 * np.pi),
                    axis=-1)
  got = _maybe_jit(losses.negative_log_likelihood, jitted)(student, target)
  np.testing.assert_allclose(got, expected, rtol=1e-5)


@pytest.mark.parametrize("jitted", [False, True])
def test_cross_entropy_is_kl_plus_expert_entropy(jitted):
  student, expert = _gaussians(1)
  got = _maybe_jit(losses.cross_entropy, jitted)(expert, student)
  # H[p ‖ q] = KL(p ‖ q) + H[p]; Gaussian entropy Σ ½ log(2πe σ²), in float64.
  mp, sp = expert.mean.astype(np.float64), expert.std.astype(np.float64)
  mq, sq = student.mean.astype(np.float64), student.std.astype(np.float64)
  kl = np.sum(np.log(sq / sp) + (sp ** 2 + (mp - mq) ** 2) / (2 * sq ** 2) - 0.5, axis=-1)
  entropy = np.sum(0.5 * np.log(2 * np.pi * np.e * sp ** 2), axis=-1)
  np.testing.assert_allclose(got, kl + entropy, rtol=1e-5)


def test_cross_entropy_matches_monte_carlo():
  student, expert = _gaussians(2)
  rng = np.random.default_rng(3)
  u = expert.mean + expert.std * rng.normal(size=(200_000, B, D))
  log_q = -(0.5 * ((u - student.mean) / student.std) ** 2 + np.log(student.std)
            + 0.5 * np.log(2 * np.pi)).sum(-1)
  np.testing.assert_allclose(losses.cross_entropy(expert, student), -log_q.mean(0), rtol=1e-2)


def test_cross_entropy_is_minimised_by_the_expert_itself():
  _, expert = _gaussians(4)
  grads = jax.grad(lambda m, s: losses.cross_entropy(
      expert, distributions.GaussianParams(m, s)).sum(), argnums=(0, 1))(expert.mean, expert.std)
  for g in grads:
    np.testing.assert_allclose(g, 0.0, atol=1e-5)


@pytest.mark.parametrize("loss", ["log_likelihood", "cross_entropy"])
@pytest.mark.parametrize("jitted", [False, True])
def test_cloning_loss_weights_real_and_synthetic_states_as_apc(loss, jitted):
  rng = np.random.default_rng(5)
  g = 3  # One real state and M = 2 synthetic ones.
  batch = cloning_types.Demonstration(
      observation={"x": rng.normal(size=(B, g, 4)).astype(np.float32)},
      expert_mean=rng.normal(size=(B, g, D)).astype(np.float32),
      expert_std=rng.uniform(0.5, 1.0, size=(B, g, D)).astype(np.float32),
      weight=np.tile(np.array([1.0, 0.5, 0.5], np.float32), (B, 1)))
  w = rng.normal(size=(4, D)).astype(np.float32)

  def apply(params, observation):  # A linear student with std 0.7.
    mean = observation["x"] @ params
    return distributions.GaussianParams(mean, jnp.full_like(mean, 0.7))

  value, _ = _maybe_jit(lambda p, b: losses.cloning_loss(p, b, policy_apply=apply, loss=loss),
                        jitted)(w, batch)
  per = []
  for b in range(B):
    terms = []
    for j in range(g):
      student = distributions.GaussianParams(batch.observation["x"][b, j:j + 1] @ w,
                                             np.full((1, D), 0.7, np.float32))
      if loss == "log_likelihood":
        terms.append(float(losses.negative_log_likelihood(student,
                                                          batch.expert_mean[b, j:j + 1])[0]))
      else:
        expert = distributions.GaussianParams(batch.expert_mean[b, j:j + 1],
                                              batch.expert_std[b, j:j + 1])
        terms.append(float(losses.cross_entropy(expert, student)[0]))
    # APC, Eq. 5: ℓ(real) + (1/M) Σ_j ℓ(synthetic j), averaged over states; our loss halves it.
    per.append(terms[0] + np.mean(terms[1:]))
  np.testing.assert_allclose(value, np.mean(per) / 2.0, rtol=1e-5)
