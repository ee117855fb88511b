"""The NPMP loss on windows of reference episodes, as pure functions.

Shapes: B windows, L = T + K steps each (T loss steps, K more future reference frames), Z latent
dimensions, D action dimensions, M LFPC perturbations per state, F proprioceptive features.

Merel et al. 2019, "Neural probabilistic motor primitives for humanoid control", §3.1
(https://arxiv.org/abs/1811.11711): per step t of a reference,

  ℓ_t = −log π(a_t^E | s_t, z_t) + β KL(q(z_t | z_{t−1}, r_t) ‖ p(z_t | z_{t−1})),
  z_t ~ q(z_t | z_{t−1}, r_t) drawn with the reparameterisation trick, sequentially in t,

with p the AR(1) prior N(α z_{t−1}, (1 − α²) σ² I) and, for the window's first step, its
stationary marginal N(0, σ² I) (a window may start mid-episode; at every t the AR(1) chain's
marginal is N(0, σ² I)). The KL is the closed form between diagonal Gaussians, taken at the drawn
z_{t−1} (a one-sample estimate of the sequence KL). With LFPC (§3.2), each state s_t also appears
perturbed, s_t + δ_m, labelled u_m = μ_E(s_t) + J_E(s_t) δ_m, and the decoder is trained there with
the same z_t:  ℓ_t += (w / M) Σ_m −log π(u_m | s_t + δ_m, z_t).
"""

from typing import NamedTuple

import chex
import jax
import jax.numpy as jnp

from priorax.agents.npmp import networks as networks_lib
from priorax.networks import distributions
from priorax.replay.types import Step

# Keys of `Step.extras` holding LFPC data: perturbed proprioceptive states [B, L, M, ...] by key
# and their linear-feedback labels (pre-tanh) [B, L, M, D].
LFPC_OBSERVATION = "lfpc_observation"
LFPC_ACTION = "lfpc_action"


class Unroll(NamedTuple):
  """The encoder unrolled over a window, all [B, T, Z]."""

  posterior: distributions.GaussianParams
  prior: distributions.GaussianParams
  z: chex.Array


class NPMPStats(NamedTuple):
  """Means over the real steps of a batch."""

  nll: chex.Array  # −log N(atanh a^E; μ, σ) of the decoder (the tanh's Jacobian is a constant).
  kl: chex.Array
  lfpc_nll: chex.Array
  action_mse: chex.Array  # (tanh μ − a^E)², the decoder's deterministic action error.
  posterior_std: chex.Array


def unroll_encoder(networks: networks_lib.NPMPNetworks, encoder_params, features: chex.Array,
                   noise: chex.Array, *, alpha: float, sigma: float) -> Unroll:
  """z_t = μ_q + σ_q ε_t, q = q(z_t | z_{t−1}, r_t), for t = 0 … T − 1 (z_{−1} = 0).

  Args:
    networks: the NPMP networks.
    encoder_params: the encoder's params.
    features: r_t, [B, T, K·F] (`networks.reference_features`).
    noise: ε, [B, T, Z]; zero gives the posterior means.
    alpha: the AR(1) coefficient α.
    sigma: the prior's stationary std σ.

  Returns:
    The posteriors, the priors they are compared with (N(0, σ² I) at t = 0, then
    N(α z_{t−1}, (1 − α²) σ² I)) and the drawn latents.
  """
  chex.assert_rank([features, noise], 3)
  chex.assert_equal_shape_prefix([features, noise], 2)

  def step(z_tm1, inputs):
    t, features_t, noise_t = inputs
    posterior = networks.encoder_apply(encoder_params, z_tm1, features_t)
    z_t = posterior.mean + posterior.std * noise_t
    first = networks_lib.stationary_prior(z_tm1.shape, sigma)
    later = networks_lib.ar1_prior(z_tm1, alpha, sigma)
    prior = jax.tree_util.tree_map(lambda a, b: jnp.where(t == 0, a, b), first, later)
    return z_t, (posterior, prior, z_t)

  time_major = lambda x: jnp.swapaxes(x, 0, 1)
  length = features.shape[1]
  z_init = jnp.zeros((features.shape[0], noise.shape[-1]), features.dtype)
  _, (posterior, prior, z) = jax.lax.scan(
      step, z_init, (jnp.arange(length), time_major(features), time_major(noise)))
  batch_major = lambda tree: jax.tree_util.tree_map(time_major, tree)
  return Unroll(batch_major(posterior), batch_major(prior), time_major(z))


def pre_tanh_action(action: chex.Array, clip: float) -> chex.Array:
  """u = atanh(a) with a clipped to ±(1 − clip), so saturated reference actions stay finite."""
  return jnp.arctanh(jnp.clip(action, -1.0 + clip, 1.0 - clip))


def npmp_loss(params, window: Step, key: chex.PRNGKey, *,
              networks: networks_lib.NPMPNetworks, alpha: float, sigma: float, beta: float,
              num_future_frames: int, action_clip: float,
              lfpc_weight: float = 0.0) -> tuple[chex.Array, NPMPStats]:
  """The mean of ℓ_t (module docstring) over the real steps of a batch of windows.

  Args:
    params: {"encoder": ..., "decoder": ...}.
    window: a `Step` of [B, L, ...] leaves: proprioceptive observations by key, reference actions
      a^E in [−1, 1], masks; with LFPC, `extras` holds `LFPC_OBSERVATION` and `LFPC_ACTION`.
    key: draws the latents' noise.
    networks: the NPMP networks.
    alpha, sigma: the AR(1) prior's α and stationary std σ.
    beta: the KL weight β.
    num_future_frames: K; T = L − K steps are trained on.
    action_clip: see `pre_tanh_action`.
    lfpc_weight: w, the total weight of a state's M perturbed copies (used only if present).

  Returns:
    (loss, NPMPStats). Step t counts iff its K-th future frame is real (mask_{t+K} = 1), which
    also makes a_t a real action.
  """
  chex.assert_rank(window.action, 3)
  k = num_future_frames
  length = window.action.shape[1] - k
  proprio = networks.proprio(window.observation)  # [B, L, F]
  features = networks_lib.reference_features(proprio, k)
  noise = jax.random.normal(key, (*features.shape[:2], networks.latent_size), features.dtype)
  unroll = unroll_encoder(networks, params["encoder"], features, noise, alpha=alpha, sigma=sigma)
  weight = window.mask[:, k:k + length].astype(jnp.float32)  # [B, T]

  flat = lambda x: x.reshape(-1, *x.shape[2:])  # [B, T, ...] -> [B·T, ...]
  observation = jax.tree_util.tree_map(lambda x: flat(x[:, :length]), window.observation)
  policy = networks.decoder_apply(params["decoder"], observation, flat(unroll.z))
  action = window.action[:, :length]
  nll = -distributions.gaussian_log_prob(policy, flat(pre_tanh_action(action, action_clip)))
  nll = nll.reshape(weight.shape)
  kl = distributions.gaussian_kl(unroll.posterior, unroll.prior)  # [B, T]
  per_step = nll + beta * kl

  lfpc_nll = jnp.zeros_like(nll)
  extras = window.extras if isinstance(window.extras, dict) else {}
  if LFPC_ACTION in extras:
    labels = extras[LFPC_ACTION][:, :length]  # [B, T, M, D]
    m = labels.shape[2]
    perturbed = jax.tree_util.tree_map(lambda x: x[:, :length].reshape(-1, *x.shape[3:]),
                                       extras[LFPC_OBSERVATION])
    z = jnp.repeat(unroll.z[:, :, None], m, axis=2).reshape(-1, networks.latent_size)
    perturbed_policy = networks.decoder_apply(params["decoder"], perturbed, z)
    lfpc_nll = -distributions.gaussian_log_prob(perturbed_policy, labels.reshape(-1,
                                                                                labels.shape[-1]))
    lfpc_nll = jnp.mean(lfpc_nll.reshape(*weight.shape, m), axis=-1)
    per_step = per_step + lfpc_weight * lfpc_nll

  count = jnp.maximum(jnp.sum(weight), 1.0)
  mean = lambda x: jnp.sum(weight * x) / count
  squared_error = jnp.sum(jnp.square(jnp.tanh(policy.mean) - flat(action)), axis=-1)
  stats = NPMPStats(nll=mean(nll), kl=mean(kl), lfpc_nll=mean(lfpc_nll),
                    action_mse=mean(squared_error.reshape(weight.shape)),
                    posterior_std=mean(jnp.mean(unroll.posterior.std, axis=-1)))
  return mean(per_step), stats
