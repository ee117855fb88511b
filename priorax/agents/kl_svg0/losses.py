"""Losses of the KL-regularised SVG(0) agent, as pure functions of explicit inputs.

Objective (Galashov et al. 2019, "Information asymmetry in KL-regularized RL", Eq. 1,
https://arxiv.org/abs/1905.01240; Tirumala et al. 2022, "Behavior priors for efficient RL", §3,
https://arxiv.org/abs/2010.14274):
  J(π) = E_π[ Σ_t γ^t ( r_t − α KL(π(.|x_t) ‖ π0(.|x_t)) ) ].
With π0 uniform this is SAC (Haarnoja et al. 2018, https://arxiv.org/abs/1801.01290).

Shapes: B batch, D action size, C = 2 critics.
"""

from typing import NamedTuple

import chex
import jax
import jax.numpy as jnp

from priorax import types
from priorax.agents.kl_svg0 import networks as networks_lib
from priorax.networks import distributions
from priorax.priors import base as priors_base


class PolicySample(NamedTuple):
  """A reparameterised sample of π(.|s) and its KL to π0, all [B] or [B, D].

  `gaussian` and `log_prob` are those of `networks_lib.PolicyDraw` (for a hierarchical policy,
  π_H's latent Gaussian and log π_L(a|z, x_L)).
  """

  gaussian: distributions.GaussianParams
  action: chex.Array
  log_prob: chex.Array
  kl: chex.Array


def sample_policy(policy_params, prior_params, observation: types.Observation, key: chex.PRNGKey,
                  networks: networks_lib.KLSVG0Networks, prior: priors_base.Prior) -> PolicySample:
  """a = tanh(μ + σε) with log π(a|s) (change of variables) and KL(π(.|s) ‖ π0(.|s)).

  A hierarchical policy (`hierarchical.HierarchicalNetworks`) draws z ~ π_H then a ~ π_L, and its
  prior's KL is the high-level KL(π_H ‖ π0_H), an upper bound of KL(π ‖ π0).
  """
  draw = networks.sample(policy_params, observation, key)
  kl = prior.kl(prior_params, observation, draw.gaussian, draw.u, draw.log_prob)
  return PolicySample(draw.gaussian, draw.action, draw.log_prob, kl)


class CriticStats(NamedTuple):
  q_mean: chex.Array
  target_mean: chex.Array
  next_kl_mean: chex.Array


def critic_loss(critic_params, target_critic_params, policy_params, prior_params,
                transitions: types.Transition, alpha: chex.Array, key: chex.PRNGKey, *,
                networks: networks_lib.KLSVG0Networks, prior: priors_base.Prior):
  """Soft TD loss of the twin critics.

    y = R_t + Γ_t ( min_i Q'_i(x_{t+n}, a') − α KL(π(.|x_{t+n}) ‖ π0(.|x_{t+n})) ),  a' ~ π(.|x_{t+n})
    L = ½ Σ_i E_B[ (Q_i(x_t, a_t) − sg(y))² ]

  R_t and Γ_t are the adder's n-step reward sum and discount (γ included, `types.Transition`). For
  n > 1 only the bootstrap state's KL is subtracted: the intermediate states' penalties would need
  the states themselves, which a transition does not carry (the Retrace sequence learner has them).

  Args:
    critic_params: stacked twin-critic params (leading axis C).
    target_critic_params: their target copy.
    policy_params: current policy params (a' is drawn from the current policy, as in SAC).
    prior_params: π0's params.
    transitions: a batch of n-step transitions, rewards/discounts [B].
    alpha: the KL coefficient α, a scalar (treated as a constant here).
    key: RNG key for a'.
    networks, prior: the pure functions.

  Returns:
    (loss, CriticStats).
  """
  chex.assert_rank([transitions.reward, transitions.discount, alpha], [1, 1, 0])
  next_sample = sample_policy(policy_params, prior_params, transitions.next_observation, key,
                              networks, prior)
  next_q = networks.critic_apply(target_critic_params, transitions.next_observation,
                                 next_sample.action)
  next_value = jnp.min(next_q, axis=0) - alpha * next_sample.kl
  target = jax.lax.stop_gradient(transitions.reward + transitions.discount * next_value)
  q = networks.critic_apply(critic_params, transitions.observation, transitions.action)
  chex.assert_equal_shape([q[0], target])
  loss = 0.5 * jnp.sum(jnp.mean(jnp.square(q - target[None]), axis=1))
  return loss, CriticStats(jnp.mean(q), jnp.mean(target), jnp.mean(next_sample.kl))


class PolicyStats(NamedTuple):
  kl_mean: chex.Array
  entropy_estimate: chex.Array
  q_policy_mean: chex.Array


def policy_loss(policy_params, critic_params, prior_params, observation: types.Observation,
                alpha: chex.Array, key: chex.PRNGKey, *, networks: networks_lib.KLSVG0Networks,
                prior: priors_base.Prior):
  """SVG(0) policy loss with the reparameterised action (Heess et al. 2015, Eq. 12,
  https://arxiv.org/abs/1510.09142), regularised towards π0:

    L(θ) = E_B[ α KL(π_θ(.|s) ‖ π0(.|s)) − min_i Q_i(s, tanh(μ_θ(s) + σ_θ(s) ε)) ]

  Gradients reach θ through the action and the KL; critic and prior params are held fixed (only θ
  is differentiated by the caller).

  Returns:
    (loss, PolicyStats).
  """
  chex.assert_rank(alpha, 0)
  sample = sample_policy(policy_params, prior_params, observation, key, networks, prior)
  q = jnp.min(networks.critic_apply(critic_params, observation, sample.action), axis=0)
  loss = jnp.mean(alpha * sample.kl - q)
  return loss, PolicyStats(jnp.mean(sample.kl), -jnp.mean(sample.log_prob), jnp.mean(q))


class PriorStats(NamedTuple):
  kl_mean: chex.Array


def prior_loss(prior_params, policy_params, observation: types.Observation, key: chex.PRNGKey, *,
               networks: networks_lib.KLSVG0Networks, prior: priors_base.Prior):
  """Distillation of the policy into a learned default policy π0(a | x_D) (Galashov et al. 2019,
  "Information asymmetry in KL-regularized RL", the regulariser of Eq. 1 minimised over π0,
  https://arxiv.org/abs/1905.01240):

    L(φ) = E_{s~B}[ KL(sg π_θ(.|s) ‖ π0_φ(.|s_D)) ]

  π is held fixed (stop-gradient on θ): the gradient reaches φ only, and the policy is regularised
  towards π0 by `policy_loss`, which differentiates θ only. With the closed-form KL of a learned
  tanh-Gaussian prior the sample drawn here is unused; a sampled estimator
  log π(a|s) − log π0(a|s_D), a ~ π, gives the unbiased gradient −E_π[∇_φ log π0(a|s_D)].

  Args:
    prior_params: φ, π0's params (differentiated).
    policy_params: θ, the policy's params (held fixed).
    observation: replayed states s, a dict of [B, ...] arrays; π0 reads its keys x_D ⊂ s.
    key: RNG key for the sample a ~ π(.|s).
    networks, prior: the pure functions.

  Returns:
    (loss, PriorStats).
  """
  sample = sample_policy(jax.lax.stop_gradient(policy_params), prior_params, observation, key,
                         networks, prior)
  chex.assert_rank(sample.kl, 1)
  loss = jnp.mean(sample.kl)
  return loss, PriorStats(loss)


def alpha_loss(log_alpha: chex.Array, kl_mean: chex.Array, target_kl: chex.Array) -> chex.Array:
  """Dual loss of α = exp(log α) for the constraint E[KL(π ‖ π0)] ≤ target
  (SAC's temperature loss, Haarnoja et al. 2018b, Eq. 18, https://arxiv.org/abs/1812.05905, written
  for a KL; with the uniform prior, target_kl = d·log 2 − target_entropy):

    L(log α) = log α · (target_kl − sg(E_B[KL]))

  Its gradient raises α while the KL exceeds the target and lowers it otherwise.

  Args:
    log_alpha: scalar.
    kl_mean: the batch mean of the KL estimates, scalar.
    target_kl: scalar.
  """
  chex.assert_rank([log_alpha, kl_mean], [0, 0])
  return log_alpha * (target_kl - jax.lax.stop_gradient(kl_mean))
