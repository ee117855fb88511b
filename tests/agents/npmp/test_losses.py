"""The NPMP's prior, KL term, information flow and LFPC labels, against hand computations."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from priorax.agents.cloning import experts
from priorax.agents.npmp import builder
from priorax.agents.npmp import config as config_lib
from priorax.agents.npmp import losses
from priorax.agents.npmp import networks as networks_lib
from priorax.networks import distributions
from priorax.replay.types import Step

SHAPES = {"position": (2,), "velocity": (3,)}
ACTIONS = 2
B, T, K, Z = 3, 4, 2, 5


def _config(**fields):
  return config_lib.NPMPConfig(latent_size=Z, num_future_frames=K, sequence_length=T,
                               encoder_hidden_sizes=(16,), decoder_hidden_sizes=(16, 16),
                               **fields)


def _window(rng, length=T + K, extras=()):
  observation = {k: rng.normal(size=(B, length, *s)).astype(np.float32) for k, s in SHAPES.items()}
  return Step(observation=observation,
              action=rng.uniform(-0.9, 0.9, (B, length, ACTIONS)).astype(np.float32),
              reward=np.zeros((B, length), np.float32), discount=np.ones((B, length), np.float32),
              start_of_episode=np.zeros((B, length), bool), mask=np.ones((B, length), np.float32),
              extras=extras)


def test_ar1_prior_has_stationary_marginal():
  alpha, sigma = 0.95, 0.7
  key = jax.random.PRNGKey(0)
  z = sigma * jax.random.normal(key, (200_000, 2))  # z_0 from the stationary N(0, σ² I).
  for t in range(30):
    prior = networks_lib.ar1_prior(z, alpha, sigma)
    z = distributions.sample_pre_tanh(prior, jax.random.fold_in(key, t))
  np.testing.assert_allclose(np.var(z, axis=0), sigma**2, rtol=0.02)
  np.testing.assert_allclose(np.mean(z, axis=0), 0.0, atol=0.01)
  # Exactly: Var z_t = α² σ² + (1 − α²) σ² = σ², from any z_{t−1} ~ N(0, σ² I).
  std = networks_lib.ar1_prior(jnp.zeros(1), alpha, sigma).std
  np.testing.assert_allclose(alpha**2 * sigma**2 + std**2, sigma**2, rtol=1e-6)


@pytest.mark.parametrize("jit", [False, True])
def test_kl_term_matches_hand_computation(jit):
  config = _config(beta=0.3)
  networks = networks_lib.make_networks(SHAPES, ACTIONS, config)
  params = networks.init(jax.random.PRNGKey(1))
  window = _window(np.random.default_rng(0))
  key = jax.random.PRNGKey(2)
  loss_fn = lambda p, w, k: losses.npmp_loss(
      p, w, k, networks=networks, alpha=config.alpha, sigma=config.sigma, beta=config.beta,
      num_future_frames=K, action_clip=config.action_clip)
  loss, stats = (jax.jit(loss_fn) if jit else loss_fn)(params, window, key)

  # By hand, in float64: the same noise, the encoder stepped one t at a time.
  proprio = np.concatenate([window.observation[k] for k in sorted(SHAPES)], -1).astype(np.float64)
  noise = np.asarray(jax.random.normal(key, (B, T, Z)), np.float64)
  z_tm1 = np.zeros((B, Z))
  kls, nlls = [], []
  for t in range(T):
    features = np.concatenate([proprio[:, t + k] - proprio[:, t] for k in range(1, K + 1)], -1)
    q = networks.encoder_apply(params["encoder"], jnp.asarray(z_tm1, jnp.float32),
                               jnp.asarray(features, jnp.float32))
    mu_q, sd_q = np.asarray(q.mean, np.float64), np.asarray(q.std, np.float64)
    if t == 0:
      mu_p, sd_p = np.zeros_like(mu_q), np.full_like(sd_q, config.sigma)
    else:
      mu_p = config.alpha * z_tm1
      sd_p = np.full_like(sd_q, config.sigma * np.sqrt(1 - config.alpha**2))
    kls.append(np.sum(np.log(sd_p / sd_q) + (sd_q**2 + (mu_q - mu_p)**2) / (2 * sd_p**2) - 0.5,
                      -1))
    z_t = mu_q + sd_q * noise[:, t]
    pi = networks.decoder_apply(params["decoder"],
                                {k: v[:, t] for k, v in window.observation.items()},
                                jnp.asarray(z_t, jnp.float32))
    u = np.arctanh(window.action[:, t].astype(np.float64))
    mu, sd = np.asarray(pi.mean, np.float64), np.asarray(pi.std, np.float64)
    nlls.append(-np.sum(-0.5 * ((u - mu) / sd)**2 - np.log(sd) - 0.5 * np.log(2 * np.pi), -1))
    z_tm1 = z_t
  np.testing.assert_allclose(stats.kl, np.mean(kls), rtol=1e-4)
  np.testing.assert_allclose(stats.nll, np.mean(nlls), rtol=1e-4)
  np.testing.assert_allclose(loss, np.mean(nlls) + config.beta * np.mean(kls), rtol=1e-4)


def test_encoder_sees_only_the_next_k_frames():
  config = _config()
  networks = networks_lib.make_networks(SHAPES, ACTIONS, config)
  params = networks.init(jax.random.PRNGKey(3))
  rng = np.random.default_rng(1)
  window = _window(rng)
  unroll = lambda w: losses.unroll_encoder(
      networks, params["encoder"],
      networks_lib.reference_features(networks.proprio(w.observation), K),
      jnp.zeros((B, T, Z)), alpha=config.alpha, sigma=config.sigma)
  base = unroll(window)
  t0 = 1
  # Frames after t0 + K (and actions anywhere) do not change q(z_t | ·) for t <= t0.
  later = {k: v.copy() for k, v in window.observation.items()}
  for v in later.values():
    v[:, t0 + K + 1:] += 5.0
  changed = unroll(window._replace(observation=later,
                                   action=rng.uniform(-1, 1, window.action.shape)))
  np.testing.assert_allclose(changed.posterior.mean[:, :t0 + 1], base.posterior.mean[:, :t0 + 1],
                             atol=1e-6)
  # The K-th future frame of step t0 does.
  within = {k: v.copy() for k, v in window.observation.items()}
  for v in within.values():
    v[:, t0 + K] += 5.0
  assert np.max(np.abs(unroll(window._replace(observation=within)).posterior.mean[:, t0]
                       - base.posterior.mean[:, t0])) > 1e-5


def test_decoder_sees_only_proprio_and_z():
  config = _config()
  networks = networks_lib.make_networks(SHAPES, ACTIONS, config)
  params = networks.init(jax.random.PRNGKey(4))
  rng = np.random.default_rng(2)
  observation = {k: rng.normal(size=(B, *s)).astype(np.float32) for k, s in SHAPES.items()}
  z = rng.normal(size=(B, Z)).astype(np.float32)
  base = networks.decoder_apply(params["decoder"], observation, z)
  with_task = {**observation, "target": rng.normal(size=(B, 7)).astype(np.float32)}
  np.testing.assert_array_equal(networks.decoder_apply(params["decoder"], with_task, z).mean,
                                base.mean)
  assert np.max(np.abs(networks.decoder_apply(params["decoder"], observation, z + 1.0).mean
                       - base.mean)) > 1e-6


def test_lfpc_labels_equal_a_linear_expert_action():
  rng = np.random.default_rng(3)
  weights = {k: rng.normal(size=(ACTIONS, s[0])).astype(np.float32) for k, s in SHAPES.items()}
  bias = rng.normal(size=ACTIONS).astype(np.float32)
  expert = experts.make_linear_expert(weights, bias, std=0.2)
  config = _config(lfpc=True, lfpc_perturbations=3, lfpc_scale=0.5)
  std = {k: np.full(s, 0.7, np.float32) for k, s in SHAPES.items()}
  labeller = builder.LFPCLabeller(expert, std, config, jax.random.PRNGKey(5))
  observation = {k: rng.normal(size=(6, *s)).astype(np.float32) for k, s in SHAPES.items()}
  observation["target"] = rng.normal(size=(6, 1)).astype(np.float32)  # Not perturbed.
  extras = labeller(observation)
  perturbed = extras[losses.LFPC_OBSERVATION]
  assert sorted(perturbed) == sorted(SHAPES)
  # For a linear μ_E, μ_E(s) + J_E(s) δ = μ_E(s + δ): the expert's own action there.
  flat = {k: perturbed[k].reshape(-1, *SHAPES[k]) for k in SHAPES}
  expected = expert.distribution(flat).mean.reshape(6, 3, ACTIONS)
  np.testing.assert_allclose(extras[losses.LFPC_ACTION], expected, rtol=1e-5, atol=1e-5)
  assert np.std(perturbed["position"] - observation["position"][:, None]) > 0.1


def test_lfpc_term_enters_the_loss():
  config = _config(lfpc=True, lfpc_perturbations=2, lfpc_weight=0.5)
  networks = networks_lib.make_networks(SHAPES, ACTIONS, config)
  params = networks.init(jax.random.PRNGKey(6))
  rng = np.random.default_rng(4)
  extras = {losses.LFPC_OBSERVATION: {k: rng.normal(size=(B, T + K, 2, *s)).astype(np.float32)
                                      for k, s in SHAPES.items()},
            losses.LFPC_ACTION: rng.normal(size=(B, T + K, 2, ACTIONS)).astype(np.float32)}
  window = _window(rng, extras=extras)
  common = dict(networks=networks, alpha=config.alpha, sigma=config.sigma, beta=config.beta,
                num_future_frames=K, action_clip=config.action_clip)
  key = jax.random.PRNGKey(7)
  with_lfpc, stats = losses.npmp_loss(params, window, key, lfpc_weight=0.5, **common)
  without, _ = losses.npmp_loss(params, window._replace(extras=()), key, **common)
  assert stats.lfpc_nll > 0
  np.testing.assert_allclose(with_lfpc, without + 0.5 * stats.lfpc_nll, rtol=1e-5)


def test_config_rejects_bad_values():
  with pytest.raises(ValueError, match="alpha=1.0"):
    config_lib.NPMPConfig(alpha=1.0)
  with pytest.raises(ValueError, match="num_future_frames=0"):
    config_lib.NPMPConfig(num_future_frames=0)
  small = config_lib.NPMPConfig.for_body("walker")
  assert small.latent_size == 16 and small.alpha == 0.95
  assert config_lib.NPMPConfig.for_body("humanoid").encoder_hidden_sizes == (1024, 1024)
