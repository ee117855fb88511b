"""Losses of the Retrace sequence learner of `kl_svg0`, as pure functions of explicit inputs.

The KL-regularised papers' learner (Galashov et al. 2019, https://arxiv.org/abs/1905.01240, §4 and
App. C; Tirumala et al. 2022, https://arxiv.org/abs/2010.14274, §5) and Acme's `svg0_prior` agent:
an SVG(0) policy and a critic trained by Retrace (Munos et al. 2016, "Safe and efficient off-policy
reinforcement learning", https://arxiv.org/abs/1606.02647) on replayed sequences, bootstrapping
from target networks (policy π', critic Q', prior π0') that are hard copies of the online ones.

A sequence is a `priorax.replay.Step` of N = L + 1 stored steps x_0..x_L (`SequenceAdder`); its L
transitions are t = 0..L−1. Transition t is *valid* iff step t+1 is a real step of the same
episode: mask_{t+1} = 1 and not start_of_episode_{t+1} (padding after an episode's final step,
and a step that straddles an episode start, are masked, as `rlax.retrace_continuous` callers do).
The actor stores the behaviour density log μ(a_t|x_t) and the pre-squash action u_t (a_t =
tanh(u_t)) in the step's extras (`EXTRAS_LOG_PROB`, `EXTRAS_PRE_TANH_ACTION`): u_t lets the learner
evaluate log π'(a_t|x_t) exactly where tanh saturates in float32.

Shapes: B batch, N stored steps per sequence, K action samples, D action size, C = 2 critics.
"""

from typing import NamedTuple

import chex
import jax
import jax.numpy as jnp

from priorax import types
from priorax.agents.kl_svg0 import networks as networks_lib
from priorax.networks import distributions
from priorax.priors import base as priors_base
from priorax.replay.types import Step

# Keys of the actor's extras (what `acting.make_policy(..., with_extras=True)` returns).
EXTRAS_LOG_PROB = "log_prob"
EXTRAS_PRE_TANH_ACTION = "pre_tanh_action"


def retrace_targets(r_t: chex.Array, discount_t: chex.Array, q_t: chex.Array, v_t: chex.Array,
                    log_rho_t: chex.Array, valid_t: chex.Array, lambda_: float) -> chex.Array:
  """Retrace targets Q_ret of one sequence (Munos et al. 2016, Eq. 3, written recursively):

    Q_ret_t = r_t + γ_t [ V(x_{t+1}) + c_{t+1} (Q_ret_{t+1} − Q'(x_{t+1}, a_{t+1})) ],
    c_t = λ min(1, ρ_t) when transition t is valid, else 0;  c_{N−1} = 0,

  so the trace is cut at the end of the sequence and wherever the next transition is not a real
  one of the same episode (the target then bootstraps from V(x_{t+1}) alone). With λ = 1 and
  ρ ≡ 1 this is the on-policy expected-SARSA return; `rlax.retrace_continuous` computes the same
  recursion without validity masks.

  Args:
    r_t: rewards r_0..r_{N−1} [N] (index N−1 unused).
    discount_t: γ·d_t, the agent discount times the environment discount [N] (N−1 unused).
    q_t: Q'(x_t, a_t), the target critic at the behaviour actions [N] (index 0 unused).
    v_t: V(x_t) [N] (index 0 unused).
    log_rho_t: log π'(a_t|x_t) − log μ(a_t|x_t) [N] (index 0 unused).
    valid_t: bool [N], whether transition t is valid (index N−1 is never used as a transition).
    lambda_: the trace coefficient λ ∈ [0, 1].

  Returns:
    Q_ret_t for t = 0..N−2 [N−1]; entries of invalid transitions are finite but meaningless.
  """
  chex.assert_rank([r_t, discount_t, q_t, v_t, log_rho_t, valid_t], 1)
  chex.assert_equal_shape([r_t, discount_t, q_t, v_t, log_rho_t, valid_t])
  c_t = lambda_ * jnp.minimum(1.0, jnp.exp(log_rho_t))

  def backward(q_ret_tp1, xs):
    r, discount, v_tp1, q_tp1, c_tp1, valid_tp1 = xs
    # `where`, not a product with c = 0: masked steps may hold any finite or infinite value.
    correction = jnp.where(valid_tp1, c_tp1 * (q_ret_tp1 - q_tp1), 0.0)
    q_ret = r + discount * (v_tp1 + correction)
    return q_ret, q_ret

  # The carry enters step N−2 with valid_{N−1} forced False: no trace beyond the sequence.
  valid_tp1 = valid_t[1:].at[-1].set(False)
  _, q_ret = jax.lax.scan(
      backward, jnp.zeros((), r_t.dtype),
      (r_t[:-1], discount_t[:-1], v_t[1:], q_t[1:], c_t[1:], valid_tp1), reverse=True)
  return q_ret


def valid_transitions(steps: Step) -> chex.Array:
  """Whether transition t of each sequence is valid (module docstring): [B, N] bool, column N−1
  False (the last stored step starts no transition within the sequence)."""
  chex.assert_rank([steps.mask, steps.start_of_episode], 2)
  next_real = (steps.mask[:, 1:] > 0) & ~steps.start_of_episode[:, 1:].astype(bool)
  return jnp.concatenate([next_real, jnp.zeros_like(next_real[:, :1])], axis=1)


def _flatten(nest: types.NestedArray) -> types.NestedArray:
  """[B, N, ...] -> [B·N, ...] for every leaf (networks take one batch axis)."""
  return jax.tree_util.tree_map(lambda x: jnp.reshape(x, (-1, *x.shape[2:])), nest)


def _tile(nest: types.NestedArray, k: int) -> types.NestedArray:
  """[M, ...] -> [K·M, ...]: the batch repeated K times, sample-major."""
  return jax.tree_util.tree_map(lambda x: jnp.tile(x, (k,) + (1,) * (x.ndim - 1)), nest)


def _masked_mean(x: chex.Array, weights: chex.Array) -> chex.Array:
  return jnp.sum(x * weights) / jnp.maximum(jnp.sum(weights), 1.0)


class ActionSamples(NamedTuple):
  """K reparameterised samples of π(.|x) per state, flattened states M = B·N."""

  gaussian: distributions.GaussianParams  # [M, D].
  u: chex.Array  # Pre-squash samples [K, M, D].
  log_prob: chex.Array  # log π(tanh u|x) [K, M].


def sample_actions(policy_params, observation: types.Observation, key: chex.PRNGKey,
                   num_samples: int, networks: networks_lib.KLSVG0Networks) -> ActionSamples:
  """u_k = μ(x) + σ(x) ε_k, k = 1..K, for a batch of states (gradients reach μ and σ)."""
  gaussian = networks.policy_apply(policy_params, observation)
  noise = jax.random.normal(key, (num_samples, *gaussian.mean.shape), gaussian.mean.dtype)
  u = gaussian.mean + gaussian.std * noise
  log_prob = jax.vmap(distributions.tanh_gaussian_log_prob, in_axes=(None, 0))(gaussian, u)
  return ActionSamples(gaussian, u, log_prob)


def expected_q(critic_params, observation: types.Observation, u: chex.Array,
               networks: networks_lib.KLSVG0Networks) -> chex.Array:
  """mean_k min_i Q_i(x, tanh(u_k)) for u [K, M, D]: the critics evaluated on all K·M pairs at
  once; the twin minimum as in the transition learner. Returns [M]."""
  k, m = u.shape[0], u.shape[1]
  q = networks.critic_apply(critic_params, _tile(observation, k), jnp.tanh(u).reshape(k * m, -1))
  return jnp.mean(jnp.min(q, axis=0).reshape(k, m), axis=0)


class RetraceCriticStats(NamedTuple):
  q_mean: chex.Array
  target_mean: chex.Array
  kl_mean: chex.Array
  rho_mean: chex.Array
  valid_fraction: chex.Array


def retrace_critic_loss(critic_params, target_critic_params, target_policy_params, policy_params,
                        target_prior_params, steps: Step, alpha: chex.Array, key: chex.PRNGKey, *,
                        networks: networks_lib.KLSVG0Networks, prior: priors_base.Prior,
                        discount: float, lambda_: float, num_action_samples: int):
  """Retrace critic loss of the KL-regularised objective (METHODS §1; Galashov et al. 2019, App. C):

    V(x) = mean_k min_i Q'_i(x, a_k) − α sg KL(π(.|x) ‖ π0'(.|x_D)),   a_k ~ π'(.|x), k = 1..K,
    log ρ_t = log π'(a_t|x_t) − log μ(a_t|x_t),
    Q_ret = retrace_targets(r, γ d, min_i Q'_i(x, a), V, log ρ, valid, λ),
    L = ½ Σ_i E_{valid t}[ (sg(Q_ret_t) − Q_i(x_t, a_t))² ].

  The KL is the prior's estimator at one sample of the online π (exact for closed-form priors,
  `log π(a) + d log 2` for the uniform one) towards the *target* prior π0'. Only the online critics
  are differentiated: targets, policies and prior enter through stop-gradients.

  Args:
    critic_params, target_critic_params: stacked twin critics (leading axis C) and their copy.
    target_policy_params: π' (samples a_k for V, density for ρ).
    policy_params: π (the KL term of V).
    target_prior_params: π0'.
    steps: a batch of sequences, leaves [B, N, ...]; extras hold `EXTRAS_LOG_PROB` [B, N] and
      `EXTRAS_PRE_TANH_ACTION` [B, N, D].
    alpha: α, a scalar (a constant here).
    key: RNG key for the action samples.
    networks, prior: the pure functions.
    discount: γ; lambda_: Retrace's λ; num_action_samples: K.

  Returns:
    (loss, RetraceCriticStats).
  """
  chex.assert_rank([steps.reward, steps.discount, alpha], [2, 2, 0])
  b, n = steps.reward.shape
  target_key, online_key = jax.random.split(key)
  observation = _flatten(steps.observation)
  target = sample_actions(target_policy_params, observation, target_key, num_action_samples,
                          networks)
  online = sample_actions(policy_params, observation, online_key, 1, networks)
  kl = prior.kl(target_prior_params, observation, online.gaussian, online.u[0], online.log_prob[0])
  v = expected_q(target_critic_params, observation, target.u, networks) - alpha * kl

  u_behaviour = _flatten(steps.extras[EXTRAS_PRE_TANH_ACTION])
  log_rho = (distributions.tanh_gaussian_log_prob(target.gaussian, u_behaviour)
             - _flatten(steps.extras[EXTRAS_LOG_PROB]))
  action = _flatten(steps.action)
  q_target = jnp.min(networks.critic_apply(target_critic_params, observation, action), axis=0)
  valid = valid_transitions(steps)
  q_ret = jax.vmap(retrace_targets, in_axes=(0, 0, 0, 0, 0, 0, None))(
      steps.reward, discount * steps.discount, q_target.reshape(b, n), v.reshape(b, n),
      log_rho.reshape(b, n), valid, lambda_)
  q_ret = jax.lax.stop_gradient(q_ret)  # [B, N−1].

  q = networks.critic_apply(critic_params, observation, action).reshape(-1, b, n)[:, :, :-1]
  weights = valid[:, :-1].astype(q.dtype)
  loss = 0.5 * jnp.sum(jax.vmap(_masked_mean, in_axes=(0, None))(jnp.square(q_ret - q), weights))
  kl_weights = steps.mask.reshape(-1).astype(kl.dtype)
  stats = RetraceCriticStats(
      q_mean=_masked_mean(jnp.mean(q, axis=0), weights),
      target_mean=_masked_mean(q_ret, weights),
      kl_mean=_masked_mean(kl, kl_weights),
      rho_mean=_masked_mean(jnp.exp(log_rho).reshape(b, n)[:, :-1], weights),
      valid_fraction=jnp.mean(weights))
  return loss, jax.lax.stop_gradient(stats)


class SequencePolicyStats(NamedTuple):
  kl_mean: chex.Array
  entropy_estimate: chex.Array
  q_policy_mean: chex.Array


def sequence_policy_loss(policy_params, target_critic_params, target_prior_params,
                         steps: Step, alpha: chex.Array, key: chex.PRNGKey, *,
                         networks: networks_lib.KLSVG0Networks, prior: priors_base.Prior,
                         entropy_cost: float, num_action_samples: int):
  """SVG(0) policy loss on every real state of the sequences (Heess et al. 2015, Eq. 12,
  https://arxiv.org/abs/1510.09142; METHODS §1):

    L(θ) = E_x[ −mean_k min_i Q'_i(x, a_k^θ) − β_H Ĥ(π_θ(.|x)) + α KL(π_θ(.|x) ‖ π0'(.|x_D)) ],
    a_k^θ = tanh(μ_θ(x) + σ_θ(x) ε_k),   Ĥ = −mean_k log π_θ(a_k^θ|x),

  over states with mask = 1 (padding excluded). As in Acme's `svg0_prior`, the action is scored by
  the *target* critic and the KL is taken to the *target* prior; the KL estimator is the prior's at
  the first sample. Q' and π0' are stop-gradients: only θ receives a gradient.

  Returns:
    (loss, SequencePolicyStats); `kl_mean` is the masked batch mean that drives α.
  """
  chex.assert_rank([steps.mask, alpha], [2, 0])
  # Target networks never receive gradients (the KL is towards a fixed π0', METHODS §1).
  target_critic_params, target_prior_params = jax.lax.stop_gradient(
      (target_critic_params, target_prior_params))
  observation = _flatten(steps.observation)
  sample = sample_actions(policy_params, observation, key, num_action_samples, networks)
  q = expected_q(target_critic_params, observation, sample.u, networks)
  kl = prior.kl(target_prior_params, observation, sample.gaussian, sample.u[0], sample.log_prob[0])
  entropy = -jnp.mean(sample.log_prob, axis=0)
  weights = steps.mask.reshape(-1).astype(q.dtype)
  loss = _masked_mean(alpha * kl - q - entropy_cost * entropy, weights)
  stats = SequencePolicyStats(_masked_mean(kl, weights), _masked_mean(entropy, weights),
                              _masked_mean(q, weights))
  return loss, jax.lax.stop_gradient(stats)


def sequence_prior_loss(prior_params, policy_params, steps: Step, key: chex.PRNGKey, *,
                        networks: networks_lib.KLSVG0Networks, prior: priors_base.Prior):
  """Distillation of the policy into the learned prior π0(a|x_D) on the sequences' real states
  (Galashov et al. 2019, Eq. 1 minimised over π0; `losses.prior_loss` for transitions):

    L(φ) = E_{x: mask = 1}[ KL(sg π_θ(.|x) ‖ π0_φ(.|x_D)) ].

  Returns:
    (loss, ()): the loss is its own statistic.
  """
  chex.assert_rank(steps.mask, 2)
  observation = _flatten(steps.observation)
  sample = sample_actions(jax.lax.stop_gradient(policy_params), observation, key, 1, networks)
  kl = prior.kl(prior_params, observation, sample.gaussian, sample.u[0], sample.log_prob[0])
  return _masked_mean(kl, steps.mask.reshape(-1).astype(kl.dtype)), ()
