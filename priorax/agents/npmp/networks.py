"""The NPMP's networks: the encoder q(z_t | z_{t−1}, reference), the AR(1) prior, the decoder.

Merel et al. 2019 (https://arxiv.org/abs/1811.11711), §3: an encoder sees a short window of the
future reference trajectory and proposes a latent intention z_t; the decoder — the motor
primitive — sees only the body's proprioception and z_t and outputs the action.

* Reference features. For step t the encoder sees the K future reference frames *relative to the
  current state*: r_t = [x_{t+1} − s_t, …, x_{t+K} − s_t], each x and s the concatenation of the
  library's proprioceptive keys (sorted order, as `torsos.concat_observation`). During training s_t
  is the reference state itself; in closed-loop tracking it is the body's actual state, so r_t also
  carries the tracking error. Frames past the end of a reference are the last frame repeated.
* Encoder: q(z_t | z_{t−1}, r_t) = N(μ_q, σ_q²), an MLP on [z_{t−1}, r_t] (z_{−1} = 0).
* Prior: p(z_t | z_{t−1}) = N(α z_{t−1}, (1 − α²) σ² I), AR(1), whose stationary marginal is
  N(0, σ² I) (`stationary_prior`).
* Decoder: π(a_t | s_t, z_t), a tanh-squashed Gaussian like every priorax policy (the experts'
  family): `apply` gives the pre-tanh Gaussian, the action is tanh(u).
"""

import dataclasses
from typing import Callable, Sequence

import chex
import haiku as hk
import jax
import jax.numpy as jnp
import numpy as np

from priorax import types
from priorax.agents.npmp import config as config_lib
from priorax.networks import distributions
from priorax.networks import heads
from priorax.networks import torsos


def ar1_prior(z_tm1: chex.Array, alpha: float, sigma: float) -> distributions.GaussianParams:
  """p(z_t | z_{t−1}) = N(α z_{t−1}, (1 − α²) σ² I) for z_{t−1} [..., Z]."""
  return distributions.GaussianParams(alpha * z_tm1,
                                      jnp.full_like(z_tm1, sigma * np.sqrt(1.0 - alpha**2)))


def stationary_prior(shape: Sequence[int], sigma: float) -> distributions.GaussianParams:
  """N(0, σ² I): the AR(1) prior's stationary marginal, the prior of a window's first step."""
  return distributions.GaussianParams(jnp.zeros(shape), jnp.full(shape, sigma))


def reference_features(proprio: chex.Array, num_future_frames: int) -> chex.Array:
  """r_t = [x_{t+k} − x_t]_{k=1..K} for every t of a window of reference states.

  Args:
    proprio: [B, L, F] concatenated proprioceptive states x_0 … x_{L−1}.
    num_future_frames: K; the window must hold L ≥ K + 1 frames.

  Returns:
    [B, L − K, K·F]: the relative future frames of steps t = 0 … L − K − 1.
  """
  chex.assert_rank(proprio, 3)
  length = proprio.shape[1] - num_future_frames
  if length < 1:
    raise ValueError(f"a window of {proprio.shape[1]} frames has no step with "
                     f"K={num_future_frames} future frames")
  current = proprio[:, :length]
  future = jnp.stack([proprio[:, k:k + length] for k in range(1, num_future_frames + 1)], axis=2)
  relative = future - current[:, :, None]
  return relative.reshape(*relative.shape[:2], -1)


@dataclasses.dataclass(frozen=True)
class NPMPNetworks:
  """Pure `(init, apply)` functions of the NPMP; params are {"encoder": ..., "decoder": ...}.

  Attributes:
    init: key -> params.
    encoder_apply: (encoder params, z_tm1 [B, Z], reference features r_t [B, K·F]) -> q(z_t|·).
    decoder_apply: (decoder params, observation [B, ...] by key, z_t [B, Z]) -> pre-tanh π(·|s, z).
    proprio: observation [..., by key] -> the concatenated proprioceptive keys [..., F].
    observation_keys: the proprioceptive keys, sorted.
    latent_size: Z.
    action_size: D.
  """

  init: Callable[[chex.PRNGKey], hk.Params]
  encoder_apply: Callable[..., distributions.GaussianParams]
  decoder_apply: Callable[..., distributions.GaussianParams]
  proprio: Callable[[types.Observation], chex.Array]
  observation_keys: tuple
  latent_size: int
  action_size: int


def make_networks(observation_shapes: dict, action_size: int,
                  config: config_lib.NPMPConfig) -> NPMPNetworks:
  """Builds the encoder and decoder for the proprioceptive keys `observation_shapes` (key ->
  shape) and D = `action_size`."""
  keys = tuple(sorted(observation_shapes))
  feature_size = int(sum(np.prod(shape, dtype=int) for shape in observation_shapes.values()))

  def proprio(observation):
    # Works on any leading axes: [B, ...] and [B, L, ...] alike.
    leading = observation[keys[0]].shape[:observation[keys[0]].ndim -
                                         len(observation_shapes[keys[0]])]
    flat = {k: jnp.reshape(observation[k], (-1, *observation_shapes[k])) for k in keys}
    return torsos.concat_observation(flat, keys).reshape(*leading, feature_size)

  def encoder(z_tm1, features):
    inputs = jnp.concatenate([z_tm1, features], axis=-1)
    embedding = torsos.LayerNormMLP(config.encoder_hidden_sizes, layer_norm=config.layer_norm)(
        inputs)
    return heads.GaussianHead(config.latent_size, min_scale=config.min_scale)(embedding)

  def decoder(observation, z):
    inputs = jnp.concatenate([proprio(observation), z], axis=-1)
    embedding = torsos.LayerNormMLP(config.decoder_hidden_sizes, layer_norm=config.layer_norm)(
        inputs)
    return heads.GaussianHead(action_size, min_scale=config.min_scale)(embedding)

  encoder_net = hk.without_apply_rng(hk.transform(encoder))
  decoder_net = hk.without_apply_rng(hk.transform(decoder))

  def init(key):
    encoder_key, decoder_key = jax.random.split(key)
    z = jnp.zeros((1, config.latent_size))
    observation = {k: jnp.zeros((1, *observation_shapes[k])) for k in keys}
    features = jnp.zeros((1, config.num_future_frames * feature_size))
    return {"encoder": encoder_net.init(encoder_key, z, features),
            "decoder": decoder_net.init(decoder_key, observation, z)}

  return NPMPNetworks(init=init, encoder_apply=encoder_net.apply,
                      decoder_apply=decoder_net.apply, proprio=proprio, observation_keys=keys,
                      latent_size=config.latent_size, action_size=action_size)
