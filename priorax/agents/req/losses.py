"""Losses of REQ, Relative Entropy Q-learning, as pure functions of explicit inputs.

Jeong, Springenberg, Kay, Zheng, Zhou, Galashov, Heess, Nori 2020, "Learning dexterous manipulation
from suboptimal experts", https://arxiv.org/abs/2010.08587 (§3, REQ).

Policy iteration with a KL trust region to a learned prior. The improved policy

  π_i(a|s) ∝ π_prior(a|s) exp(Q(s,a)/τ_s)

is never projected onto a network: it exists through self-normalised importance sampling over M
samples a_j ~ π_prior(.|s), with weights w_j = softmax_j(Q(s,a_j)/τ_s). The per-state temperature
τ_s makes KL(π_i ‖ π_prior) = ε: it minimises the convex dual

  g(τ) = τ ε + τ log( (1/M) Σ_j exp(Q(s,a_j)/τ) ).

Shapes: B batch, M prior samples per state, D action size.
"""

from typing import NamedTuple, Optional

import chex
import jax
import jax.numpy as jnp
import rlax

from priorax import types
from priorax.agents.req import networks as networks_lib
from priorax.networks import distributions

# Actions are a = tanh(u); a replayed or expert action on the box's edge has u = ±∞, so actions
# are clipped to |a| ≤ this before atanh for the prior's log-likelihood (choose; ≈ |u| ≤ 3.8).
ACTION_CLIP = 0.999
# The dual solver brackets log τ in log τ⁰ ± this: τ from τ⁰·e⁻¹² to τ⁰·e¹², wide enough for
# any ε of interest (ε → 0 sends τ to the upper end, where the weights are uniform to ~1e-5).
_LOG_BRACKET = 12.0


def temperature_dual(temperature: chex.Array, q: chex.Array, epsilon: float) -> chex.Array:
  """g(τ) = τ ε + τ log((1/M) Σ_j exp(q_j/τ)) for one state (Jeong et al. 2020, §3).

  Args:
    temperature: τ > 0, scalar.
    q: Q(s, a_j) of the M prior samples, [M].
    epsilon: the KL bound ε ≥ 0.

  Returns:
    g(τ), scalar. Its minimiser over τ > 0 gives KL(π_i ‖ π_prior) = ε (or τ → ∞ when the
    weights cannot get that far from uniform: ε = 0 gives the plain mean of q).
  """
  chex.assert_rank([temperature, q], [0, 1])
  m = q.shape[0]
  return temperature * epsilon + temperature * (
      jax.nn.logsumexp(q / temperature) - jnp.log(m))


def solve_temperature(q: chex.Array, epsilon: float, num_steps: int) -> chex.Array:
  """The per-state temperatures τ_s = argmin_τ g_s(τ), by bisection on the sign of g'.

  g is convex in τ with g'(τ) = ε − KL(w_τ ‖ uniform), w_τ = softmax(q/τ), and KL(w_τ ‖ uniform)
  falls monotonically as τ grows, so τ_s is where g' changes sign. Each step halves a bracket of
  log τ centred on the paper's start τ⁰ = the batch mean over states of the std of Q over the M
  samples (the first point tested is τ⁰ itself), keeping the half where g' changes sign.

  The paper takes 20–50 gradient steps on log τ from τ⁰; bisection (a deviation) uses the same
  gradient, needs no step size, and after 20 steps places log τ within 24·2⁻²⁰ ≈ 2e-5 of the
  minimiser whatever the scale of Q; ε → 0 drives τ to the top of the bracket, where V(s) is the
  mean of Q to ~1e-5 of its spread. No gradient flows through τ: it solves an inner problem.

  Args:
    q: [B, M] Q values of the prior's samples per state.
    epsilon: the KL bound ε ≥ 0.
    num_steps: bisection steps.

  Returns:
    τ_s, [B].
  """
  chex.assert_rank(q, 2)
  q = jax.lax.stop_gradient(q)
  m = q.shape[1]
  # A batch with no spread at all (e.g. a freshly initialised critic): any τ gives uniform weights.
  log_init = jnp.log(jnp.maximum(jnp.mean(jnp.std(q, axis=1)), 1e-6))

  centred = q - jnp.mean(q, axis=1, keepdims=True)

  def dual_gradient_sign(log_temperature):
    # KL(w ‖ uniform) = E_w[z] − log mean_j exp(z_j), z = (q − mean q)/τ. For small z (large τ,
    # ε → 0) both terms are O(|z|²) and log mean exp is taken as log1p(mean expm1(z)): the plain
    # log-sum-exp minus log M cancels to float32 noise of ~1e-7 there, which would stop τ early.
    z = centred / jnp.exp(log_temperature)[:, None]
    expected_z = jnp.sum(jax.nn.softmax(z, axis=1) * z, axis=1)
    small = jnp.log1p(jnp.mean(jnp.expm1(jnp.minimum(z, 1.0)), axis=1))
    large = jax.nn.logsumexp(z, axis=1) - jnp.log(m)
    kl = expected_z - jnp.where(jnp.max(jnp.abs(z), axis=1) < 1.0, small, large)
    return epsilon - kl >= 0  # g'(τ) ≥ 0: the minimiser is at or below τ.

  def bisect(bracket, _):
    low, high = bracket
    middle = 0.5 * (low + high)
    above_minimiser = dual_gradient_sign(middle)
    return (jnp.where(above_minimiser, low, middle), jnp.where(above_minimiser, middle, high)), None

  start = jnp.full(q.shape[:1], log_init)
  (low, high), _ = jax.lax.scan(bisect, (start - _LOG_BRACKET, start + _LOG_BRACKET), None,
                                length=num_steps)
  return jnp.exp(0.5 * (low + high))


def importance_weights(q: chex.Array, temperature: chex.Array) -> chex.Array:
  """w_j = softmax_j(q_j/τ_s), the self-normalised weights of π_i over the prior's samples, [B, M]."""
  chex.assert_rank([q, temperature], [2, 1])
  return jax.nn.softmax(q / temperature[:, None], axis=1)


def weighted_value(q: chex.Array, temperature: chex.Array) -> chex.Array:
  """V(s) = Σ_j w_j q_j ≈ E_{π_i}[Q(s, .)] = E_prior[exp(Q/τ) Q] / E_prior[exp(Q/τ)], [B]."""
  return jnp.sum(importance_weights(q, temperature) * q, axis=1)


class PriorSamples(NamedTuple):
  """M samples of the prior at B states with their Q values, temperature and value."""

  actions: chex.Array  # [B, M, D]
  q: chex.Array  # [B, M]
  temperature: chex.Array  # [B]
  value: chex.Array  # [B]


def _tile(observation: types.Observation, m: int) -> types.Observation:
  """[B, ...] -> [B·M, ...], each state repeated M times in a row."""
  return jax.tree_util.tree_map(lambda x: jnp.repeat(x, m, axis=0), observation)


def evaluate_prior_samples(prior_params, critic_params, observation: types.Observation,
                           key: chex.PRNGKey, *, networks: networks_lib.REQNetworks,
                           num_samples: int, epsilon: float, dual_steps: int) -> PriorSamples:
  """Draws a_j ~ π_prior(.|s), j < M, scores them with Q(s, a_j), solves τ_s and V(s)."""
  gaussian = networks.prior_apply(prior_params, observation)
  batch = gaussian.mean.shape[0]
  noise = jax.random.normal(key, (batch, num_samples, networks.action_size), gaussian.mean.dtype)
  actions = jnp.tanh(gaussian.mean[:, None] + gaussian.std[:, None] * noise)
  q = networks.critic_apply(critic_params, _tile(observation, num_samples),
                            actions.reshape(batch * num_samples, -1)).reshape(batch, num_samples)
  temperature = solve_temperature(q, epsilon, dual_steps)
  return PriorSamples(actions, q, temperature, weighted_value(q, temperature))


class CriticStats(NamedTuple):
  q_mean: chex.Array
  target_mean: chex.Array
  temperature_mean: chex.Array


def critic_loss(critic_params, target_critic_params, target_prior_params,
                transitions: types.Transition, key: chex.PRNGKey, *,
                networks: networks_lib.REQNetworks, num_samples: int, epsilon: float,
                dual_steps: int):
  """TD loss of Q towards the importance-weighted value of the next state (Jeong et al. 2020, §3).

    V(s') = Σ_j softmax_j(Q'(s',a_j)/τ_s') Q'(s',a_j),   a_j ~ π'_prior(.|s'),
    L = ½ E_B[(Q(s,a) − sg(R + Γ V(s')))²]

  with the target critic Q' and target prior π'_prior; R and Γ are the adder's n-step reward and
  discount (γ included, `types.Transition`). ε = 0 gives the mean of Q' over the prior's samples
  (a TD target for the prior, CRR-like), ε → ∞ the sampled maximum (Q-learning).

  Returns:
    (loss, CriticStats).
  """
  chex.assert_rank([transitions.reward, transitions.discount], [1, 1])
  next_samples = evaluate_prior_samples(
      target_prior_params, target_critic_params, transitions.next_observation, key,
      networks=networks, num_samples=num_samples, epsilon=epsilon, dual_steps=dual_steps)
  target = jax.lax.stop_gradient(transitions.reward + transitions.discount * next_samples.value)
  q = networks.critic_apply(critic_params, transitions.observation, transitions.action)
  loss = 0.5 * jnp.mean(jnp.square(q - target))
  return loss, CriticStats(jnp.mean(q), jnp.mean(target), jnp.mean(next_samples.temperature))


class DualParams(NamedTuple):
  """Unconstrained Lagrange multipliers of the prior's trust regions; α = softplus(·)."""

  alpha_mean: chex.Array
  alpha_stddev: chex.Array


def project_dual(raw: chex.Array) -> chex.Array:
  """α = softplus(raw) + 1e-8 > 0 (Acme's MPO parameterisation of its duals)."""
  return jax.nn.softplus(raw) + 1e-8


def decoupled_kl(target: distributions.GaussianParams,
                 online: distributions.GaussianParams) -> tuple[chex.Array, chex.Array]:
  """The decoupled KLs of MPO (Abdolmaleki et al. 2018, https://arxiv.org/abs/1812.02256, §4.2):

    KL_μ = KL(N(μ', Σ') ‖ N(μ, Σ')),   KL_Σ = KL(N(μ', Σ') ‖ N(μ', Σ)),

  (primed: the target prior), each [B], on the pre-tanh Gaussians (equal to the KLs of the
  tanh-squashed distributions). KL_μ moves only with the mean, KL_Σ only with the covariance.
  """
  kl_mean = distributions.gaussian_kl(target, distributions.GaussianParams(online.mean, target.std))
  kl_stddev = distributions.gaussian_kl(target,
                                        distributions.GaussianParams(target.mean, online.std))
  return kl_mean, kl_stddev


def decoupled_log_prob(target: distributions.GaussianParams, online: distributions.GaussianParams,
                       action: chex.Array) -> chex.Array:
  """log N(u; μ, Σ') + log N(u; μ', Σ) at u = atanh(clip(a)), [B]: the mean is fitted with the
  target's covariance and the covariance with the target's mean (MPO's decoupled M-step).

  The tanh change-of-variables term does not depend on the parameters and is left out.
  """
  u = jnp.arctanh(jnp.clip(action, -ACTION_CLIP, ACTION_CLIP))
  return (distributions.gaussian_log_prob(distributions.GaussianParams(online.mean, target.std), u)
          + distributions.gaussian_log_prob(
              distributions.GaussianParams(target.mean, online.std), u))


class PriorStats(NamedTuple):
  regression_loss: chex.Array
  expert_loss: chex.Array
  accepted_fraction: chex.Array
  expert_accepted_fraction: chex.Array
  kl_mean: chex.Array
  kl_stddev: chex.Array
  alpha_mean: chex.Array
  alpha_stddev: chex.Array
  value_mean: chex.Array


def prior_loss(prior_params, duals: DualParams, target_prior_params, target_critic_params,
               observation: types.Observation, action: chex.Array,
               expert_action: Optional[chex.Array], key: chex.PRNGKey, *,
               networks: networks_lib.REQNetworks, num_samples: int, epsilon: float,
               dual_steps: int, epsilon_mean: float, epsilon_stddev: float,
               expert_loss_weight: float):
  """Advantage-filtered regression of the prior with decoupled KL trust regions (Jeong et al.
  2020, §3–4), and its Lagrange duals.

    A(s, a) = Q'(s, a) − V(s),  V(s) = Σ_j w_j Q'(s, a_j)  (the improved policy's value),
    L_prior = −E_B[1[A(s,a) ≥ 0] log π_prior(a|s)] − λ_E E_B[1[A(s,ρ(s)) ≥ 0] log π_prior(ρ(s)|s)]
              + α_μ KL_μ + α_Σ KL_Σ,
    L_α = α_μ (ε_μ − sg KL_μ) + α_Σ (ε_Σ − sg KL_Σ)

  with KL_μ, KL_Σ the batch means of `decoupled_kl` to the target prior, log π_prior the decoupled
  log-likelihood (`decoupled_log_prob`), ρ(s) the expert's action stored with the state (the
  expert term only when `expert_action` is given) and the penalty and dual terms from
  `rlax.compute_parametric_kl_penalty_and_dual_loss`. Gradients: L_prior to the prior's params
  (α held fixed), L_α to the duals (the KLs held fixed).

  Args:
    prior_params, duals: what is trained.
    target_prior_params, target_critic_params: π'_prior and Q' (no gradient).
    observation: s, [B, ...]; action: replayed a, [B, D]; expert_action: ρ(s) [B, D] or None.
    key: for the prior's samples at s.

  Returns:
    (L_prior + L_α, PriorStats).
  """
  chex.assert_rank(action, 2)
  samples = evaluate_prior_samples(
      target_prior_params, target_critic_params, observation, key, networks=networks,
      num_samples=num_samples, epsilon=epsilon, dual_steps=dual_steps)
  value = jax.lax.stop_gradient(samples.value)
  target = jax.lax.stop_gradient(networks.prior_apply(target_prior_params, observation))
  online = networks.prior_apply(prior_params, observation)

  def filtered_log_likelihood(a):
    advantage = networks.critic_apply(target_critic_params, observation, a) - value
    accepted = jax.lax.stop_gradient((advantage >= 0).astype(jnp.float32))
    return -jnp.mean(accepted * decoupled_log_prob(target, online, a)), jnp.mean(accepted)

  regression_loss, accepted_fraction = filtered_log_likelihood(action)
  expert_loss = expert_accepted = jnp.zeros(())
  if expert_action is not None:
    expert_loss, expert_accepted = filtered_log_likelihood(expert_action)

  kl_mean, kl_stddev = decoupled_kl(target, online)
  kl_mean, kl_stddev = jnp.mean(kl_mean), jnp.mean(kl_stddev)
  kl_penalty, dual_loss = rlax.compute_parametric_kl_penalty_and_dual_loss(
      [(kl_mean, rlax.LagrangePenalty(duals.alpha_mean, jnp.asarray(epsilon_mean, jnp.float32))),
       (kl_stddev, rlax.LagrangePenalty(duals.alpha_stddev,
                                        jnp.asarray(epsilon_stddev, jnp.float32)))],
      project_dual)
  loss = regression_loss + expert_loss_weight * expert_loss + kl_penalty + dual_loss
  stats = PriorStats(regression_loss, expert_loss, accepted_fraction, expert_accepted, kl_mean,
                     kl_stddev, project_dual(duals.alpha_mean), project_dual(duals.alpha_stddev),
                     jnp.mean(value))
  return loss, stats


def resample(key: chex.PRNGKey, q: chex.Array, temperature: chex.Array) -> chex.Array:
  """Index j ~ Categorical(softmax(q/τ)) of one state's prior samples: acting with π_i.

  Args:
    key: RNG key.
    q: [M] Q values of the prior's samples.
    temperature: τ > 0, scalar; τ → 0 picks argmax_j q_j.

  Returns:
    The chosen index, int scalar.
  """
  chex.assert_rank([q, temperature], [1, 0])
  return jax.random.categorical(key, q / temperature)
