"""Networks of the KL-regularised SVG(0) agent: a tanh-Gaussian policy and fused twin critics."""

import dataclasses
from typing import Callable, NamedTuple, Optional, Sequence

import chex
import haiku as hk
import jax
import jax.numpy as jnp
import numpy as np

from priorax import specs
from priorax.agents.kl_svg0 import config as config_lib
from priorax.networks import distributions
from priorax.networks import heads
from priorax.networks import policies
from priorax.networks import torsos

NUM_CRITICS = 2


class PolicyDraw(NamedTuple):
  """A reparameterised draw from the policy, all [B] or [B, ·].

  Attributes:
    gaussian: the Gaussian that π0's KL is taken against: the flat policy's pre-squash action
      Gaussian, or a hierarchical policy's latent Gaussian π_H(z|x).
    u: the draw from `gaussian` (pre-squash action, or latent z).
    action: a = tanh(pre-squash action), in (-1, 1)^D.
    log_prob: log π(a|x) for the flat policy; log π_L(a|z, x_L) for a hierarchical one.
  """

  gaussian: distributions.GaussianParams
  u: chex.Array
  action: chex.Array
  log_prob: chex.Array


@dataclasses.dataclass(frozen=True)
class KLSVG0Networks:
  """Pure `(init, apply)` pairs.

  Attributes:
    policy_init: key -> policy params.
    policy_apply: (params, observation) -> pre-tanh GaussianParams [B, D].
    critic_init: key -> stacked params of the twin critics (leading axis 2).
    critic_apply: (stacked params, observation, action) -> Q values [2, B]. Both critics run as one
      vmapped network, which XLA fuses into batched matmuls (≈1.2–1.5× faster than two networks).
    action_size: D.
  """

  policy_init: Callable[[chex.PRNGKey], hk.Params]
  policy_apply: Callable[..., distributions.GaussianParams]
  critic_init: Callable[[chex.PRNGKey], hk.Params]
  critic_apply: Callable[..., chex.Array]
  action_size: int

  def sample(self, policy_params, observation, key: chex.PRNGKey) -> PolicyDraw:
    """a = tanh(u), u = μ + σε ~ π(.|s), with log π(a|s) by change of variables."""
    gaussian = self.policy_apply(policy_params, observation)
    u = distributions.sample_pre_tanh(gaussian, key)
    return PolicyDraw(gaussian, u, jnp.tanh(u), distributions.tanh_gaussian_log_prob(gaussian, u))


def dummy_observation(environment_spec: specs.EnvironmentSpec):
  """A batch of one zero observation, for initialising networks."""
  return jax.tree_util.tree_map(lambda s: np.zeros((1, *s.shape), np.float32),
                                environment_spec.observations)


def make_networks(environment_spec: specs.EnvironmentSpec,
                  config: config_lib.KLSVG0Config) -> KLSVG0Networks:
  """Builds the policy and twin critics for an environment's spec."""
  action_size = int(np.prod(environment_spec.actions.shape))
  policy = policies.make_gaussian_policy(
      action_size, config.policy_hidden_sizes, observation_keys=config.policy_observation_keys,
      layer_norm=config.layer_norm, min_scale=config.min_scale)
  critic = _make_critic(config.critic_hidden_sizes, config.layer_norm)
  observation = dummy_observation(environment_spec)
  action = np.zeros((1, action_size), np.float32)

  def critic_init(key):
    keys = jax.random.split(key, NUM_CRITICS)
    return jax.vmap(critic.init, in_axes=(0, None, None))(keys, observation, action)

  critic_apply = jax.vmap(critic.apply, in_axes=(0, None, None))
  return KLSVG0Networks(
      policy_init=lambda key: policy.init(key, observation),
      policy_apply=policy.apply,
      critic_init=critic_init,
      critic_apply=critic_apply,
      action_size=action_size)


def _make_critic(hidden_sizes: Sequence[int], layer_norm: bool,
                 observation_keys: Optional[Sequence[str]] = None) -> hk.Transformed:
  def forward(observation, action):
    inputs = jnp.concatenate([torsos.concat_observation(observation, observation_keys), action], -1)
    return heads.ScalarHead()(torsos.LayerNormMLP(hidden_sizes, layer_norm=layer_norm)(inputs))

  return hk.without_apply_rng(hk.transform(forward))
