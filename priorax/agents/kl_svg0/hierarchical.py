"""The hierarchical latent policy of `kl_svg0` (config `prior="hierarchical"`).

Tirumala et al. 2019, "Exploiting hierarchy for learning and transfer in KL-regularized RL",
https://arxiv.org/abs/1903.07438; Tirumala et al. 2022, "Behavior priors for efficient
reinforcement learning" (JMLR), https://arxiv.org/abs/2010.14274.

  π(a|x)    = ∫ π_H(z|x)    π_L(a|z, x_L) dz     (the policy)
  π0(a|x_D) = ∫ π0_H(z|x_D) π_L(a|z, x_L) dz     (the prior, `priors.hierarchical`)

π_H is a Gaussian over z ∈ R^K (K = `latent_size`, z not squashed); π_L is a tanh-Gaussian over
actions that sees z and only the keys x_L (e.g. proprioception), so what it learns is a skill space
shared by the policy and the prior. The regulariser is KL(π_H ‖ π0_H), an upper bound of
KL(π ‖ π0) (see `priors.hierarchical`); the learner is the transition learner unchanged, since a
hierarchical policy only changes how `losses.sample_policy` draws: z ~ π_H(.|x) (reparameterised),
then a = tanh(u), u ~ π_L(.|z, x_L) (reparameterised).

Choices (METHODS §3 marks them open for this learner):
- The critic is Q(s, a), not Q(s, z, a). The regularised objective's value depends on the
  marginal policy over actions, so Q(s, a) is its soft Q; a critic of z would need the actor to
  store the z it sampled in replay, which transitions do not carry. The papers condition the
  critic on z inside their Retrace learner, where it serves the importance weights.
- The policy gradient goes through a only (reported to work better): with Q(s, a), θ_H receives
  ∂Q/∂a · ∂a/∂z · ∂z/∂θ_H through the sampled action, plus the gradient of α·KL(π_H ‖ π0_H);
  there is no second path through a z input of the critic.
- π0_H has its own torso: its distillation gradient reaches no parameter of π_H or π_L.
- Acting: a training step draws z then a (a fresh z every step); evaluation takes each level's
  mean, a = tanh(mean π_L(.|mean π_H(.|x), x_L)).

Transfer: `with_low_level_params` starts π_L from an earlier run's parameters and
`freeze_low_level` makes the policy optimiser leave it unchanged (π0_H is frozen by building the
prior as not trainable, `priors.make_hierarchical_prior`).
"""

import dataclasses
from typing import Any, Callable, Mapping

import chex
import haiku as hk
import jax
import jax.numpy as jnp
import numpy as np
import optax

from priorax import specs
from priorax.agents.kl_svg0 import config as config_lib
from priorax.agents.kl_svg0 import networks as networks_lib
from priorax.networks import distributions
from priorax.networks import heads
from priorax.networks import policies
from priorax.networks import torsos
from priorax.priors import hierarchical as hierarchical_prior
from priorax.priors import learned

HIGH, LOW = "high", "low"  # The two sub-trees of the policy's params.


@dataclasses.dataclass(frozen=True)
class HierarchicalNetworks:
  """Pure functions of the hierarchical policy and the (flat) twin critics.

  Attributes:
    policy_init: key -> {"high": π_H params, "low": π_L params}.
    high_apply: (π_H params, observation) -> GaussianParams of z [B, K].
    low_apply: (π_L params, z [B, K], observation) -> pre-tanh GaussianParams of a [B, D]; reads
      only the keys x_L of the observation.
    critic_init, critic_apply: the twin critics Q(s, a), as in `networks_lib.KLSVG0Networks`.
    action_size: D.
    latent_size: K.
  """

  policy_init: Callable[[chex.PRNGKey], Any]
  high_apply: Callable[..., distributions.GaussianParams]
  low_apply: Callable[..., distributions.GaussianParams]
  critic_init: Callable[[chex.PRNGKey], hk.Params]
  critic_apply: Callable[..., chex.Array]
  action_size: int
  latent_size: int

  def sample(self, policy_params, observation, key: chex.PRNGKey) -> networks_lib.PolicyDraw:
    """z ~ π_H(.|x), then a = tanh(u), u ~ π_L(.|z, x_L), both reparameterised (SVG(0)).

    Returns π_H's Gaussian and z (what π0_H's KL is taken against) and log π_L(a|z, x_L).
    """
    high_key, low_key = jax.random.split(key)
    high = self.high_apply(policy_params[HIGH], observation)
    z = distributions.sample_pre_tanh(high, high_key)  # A Gaussian draw; z itself is not squashed.
    low = self.low_apply(policy_params[LOW], z, observation)
    u = distributions.sample_pre_tanh(low, low_key)
    return networks_lib.PolicyDraw(high, z, jnp.tanh(u),
                                   distributions.tanh_gaussian_log_prob(low, u))


def make_networks(environment_spec: specs.EnvironmentSpec,
                  config: config_lib.KLSVG0Config) -> HierarchicalNetworks:
  """π_H (the policy's torso and keys), π_L (`low_level_*` fields) and the twin critics.

  Raises:
    ValueError: naming an unknown key of `low_level_observation_keys`.
  """
  learned.check_observation_keys(config.low_level_observation_keys,
                                 environment_spec.observations, name="low_level_observation_keys")
  flat = networks_lib.make_networks(environment_spec, config)  # Its critics are ours.
  high = policies.make_gaussian_policy(
      config.latent_size, config.policy_hidden_sizes,
      observation_keys=config.policy_observation_keys, layer_norm=config.layer_norm,
      min_scale=config.min_scale)
  low_keys = tuple(config.low_level_observation_keys)

  def low_forward(z, observation):
    inputs = jnp.concatenate([z, torsos.concat_observation(observation, low_keys)], axis=-1)
    embedding = torsos.LayerNormMLP(config.low_level_hidden_sizes,
                                    layer_norm=config.layer_norm)(inputs)
    return heads.GaussianHead(flat.action_size, min_scale=config.min_scale)(embedding)

  low = hk.without_apply_rng(hk.transform(low_forward))
  observation = networks_lib.dummy_observation(environment_spec)
  z = np.zeros((1, config.latent_size), np.float32)

  def policy_init(key):
    high_key, low_key = jax.random.split(key)
    return {HIGH: high.init(high_key, observation), LOW: low.init(low_key, z, observation)}

  return HierarchicalNetworks(policy_init=policy_init, high_apply=high.apply,
                              low_apply=low.apply, critic_init=flat.critic_init,
                              critic_apply=flat.critic_apply, action_size=flat.action_size,
                              latent_size=config.latent_size)


def with_low_level_params(networks: HierarchicalNetworks, low_level_params: Any,
                          ) -> HierarchicalNetworks:
  """The same networks whose `policy_init` starts π_L from `low_level_params` (a new π_H).

  Raises:
    ValueError: when the parameters' structure or shapes differ from this π_L's.
  """
  fresh = jax.eval_shape(networks.policy_init, jax.random.PRNGKey(0))[LOW]
  expected = jax.tree_util.tree_map(lambda x: tuple(x.shape), fresh)
  got = jax.tree_util.tree_map(lambda x: tuple(np.shape(x)), low_level_params)
  if expected != got:
    raise ValueError(f"the transferred low level's parameter shapes {got} differ from this "
                     f"environment's {expected}")
  low_level_params = jax.tree_util.tree_map(jnp.asarray, low_level_params)

  def policy_init(key):
    return {**networks.policy_init(key), LOW: low_level_params}

  return dataclasses.replace(networks, policy_init=policy_init)


def freeze_low_level(optimizer: optax.GradientTransformation) -> optax.GradientTransformation:
  """`optimizer` on π_H; π_L's updates are exactly zero, so π_L never changes."""
  return optax.multi_transform({"train": optimizer, "frozen": optax.set_to_zero()},
                               {HIGH: "train", LOW: "frozen"})


def make_policy(networks: HierarchicalNetworks, evaluation: bool):
  """Returns `policy(params, key, observation) -> action` for one unbatched observation."""

  def policy(params, key, observation):
    batched = jax.tree_util.tree_map(lambda x: jnp.expand_dims(x, 0), observation)
    if not evaluation:
      return networks.sample(params, batched, key).action[0]
    z = networks.high_apply(params[HIGH], batched).mean
    return jnp.tanh(networks.low_apply(params[LOW], z, batched).mean[0])

  return policy


def architecture(config: config_lib.KLSVG0Config) -> Mapping[str, Any]:
  """The config fields a transferred π_L and π0_H must agree on (`priors.hierarchical`)."""
  return {name: getattr(config, name)
          for name in hierarchical_prior.TRANSFERRED_ARCHITECTURE_FIELDS}
