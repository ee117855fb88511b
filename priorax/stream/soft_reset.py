"""Soft parameter reset: an Ornstein–Uhlenbeck drift of the parameters towards their initialisation.

Galashov, Titsias, György, Lyle, Pascanu, Teh, Sahani, "Non-Stationary Learning of Neural Networks
with Automatic Soft Parameter Reset", NeurIPS 2024, https://arxiv.org/abs/2411.04034.

The parameters θ of any model follow the drift model (one γ per layer, i.e. per pytree leaf, or per
parameter)

  p(θ' | θ) = N(γ θ + (1 − γ) μ₀, (1 − γ²) s₀² I),

whose stationary distribution is the initialisation distribution N(μ₀, s₀² I). Each step

  θ̃ = γ θ + (1 − γ) μ₀  [+ √(1 − γ²) s₀ ε, optional],
  θ ← θ̃ + (γ² + (1 − γ²) κ) u,      u = the wrapped optimiser's update (−lr · direction),

so a drift (γ < 1) moves the starting point towards the initialisation and raises the learning rate
by the factor γ² + (1 − γ²) κ, κ = s₀² / sₜ² ≥ 1 (the ratio of prior to posterior variance, a
constant here). *(reconstructed: the paper's posterior-variance bookkeeping is replaced by the
constant κ.)*

γ = exp(−δ/2) is estimated online by one Adam step per batch on log δ, minimising
*(reconstructed: a first-order, gradient-only surrogate of the paper's predictive likelihood, so
that the wrapper needs only gradients and stays an optax transformation)*

  J(γ) = E L(θ̃(γ) + noise) ≈ L(θ) − (1 − γ)⟨g, d⟩ + ½ (1 − γ)² dᵀFd + ½ (1 − γ²) s₀² Σᵢ Fᵢ,
  ∂J/∂γ ≈ ⟨g, d⟩ − (1 − γ) dᵀFd − γ s₀² Σᵢ Fᵢ,        d = θ − μ₀,

where g is the new batch's gradient at θ and F an exponential average of g² (a diagonal Fisher
estimate standing in for the curvature): the last term is the expected loss increase from the
drift's noise, the middle one the curvature's resistance to large moves. On a stationary
stream both terms push γ up (towards 1); after an abrupt shift that makes shrinking towards the
initialisation reduce the loss (⟨g, θ − μ₀⟩ > 0), γ drops: a partial, automatic reset.

Usage (any haiku model, an RL critic included):

  opt = soft_reset(optax.adam(1e-3), params, SoftResetConfig())
  opt_state = opt.init(params)
  updates, opt_state = opt.update(grads, opt_state, params)   # params are required
  params = optax.apply_updates(params, updates)
"""

import dataclasses
from typing import NamedTuple, Optional

import chex
import jax
import jax.numpy as jnp
import optax

Array = jax.Array

PER_LAYER = "layer"
PER_PARAMETER = "parameter"


def ou_drift(theta: Array, mu0: Array, gamma: Array, prior_std: Array, noise: Array) -> Array:
  """One Ornstein–Uhlenbeck step towards the initialisation distribution.

    θ' = γ θ + (1 − γ) μ₀ + √(1 − γ²) s₀ ε

  (Galashov et al. 2024, drift model, https://arxiv.org/abs/2411.04034). If θ ~ N(μ₀, s₀²) then
  θ' ~ N(μ₀, s₀²): the initialisation distribution is stationary.

  Args:
    theta: parameters θ, any shape.
    mu0: initial parameters μ₀, same shape.
    gamma: γ ∈ (0, 1], scalar or broadcastable to θ.
    prior_std: s₀ ≥ 0, scalar or broadcastable to θ.
    noise: standard normal ε of θ's shape (zeros for the deterministic mean step).

  Returns:
    θ', θ's shape.
  """
  chex.assert_equal_shape([theta, mu0, noise])
  return gamma * theta + (1.0 - gamma) * mu0 + jnp.sqrt(1.0 - gamma**2) * prior_std * noise


def drift_objective_grad(grad: Array, theta: Array, mu0: Array, fisher: Array, gamma: Array,
                         prior_std: Array, *, per_parameter: bool) -> Array:
  """∂J/∂γ of the drift objective (first-order surrogate; reconstructed).

    J(γ) ≈ L(θ) − (1 − γ) ⟨g, d⟩ + ½ (1 − γ)² dᵀ F d + ½ (1 − γ²) s₀² Σᵢ Fᵢ,   d = θ − μ₀
    ∂J/∂γ ≈ ⟨g, d⟩ − (1 − γ) dᵀ F d − γ s₀² Σᵢ Fᵢ

  (second-order expansion of L around θ with the curvature replaced by the diagonal Fisher F).

  Args:
    grad: the batch gradient g at θ, θ's shape.
    theta, mu0: current and initial parameters, θ's shape.
    fisher: diagonal Fisher estimate F (average of g²), θ's shape.
    gamma: γ, scalar (per layer) or θ's shape (per parameter).
    prior_std: s₀, scalar or θ's shape.
    per_parameter: whether the inner products are element-wise (per-parameter γ) or summed.

  Returns:
    ∂J/∂γ with γ's shape.
  """
  chex.assert_equal_shape([grad, theta, mu0, fisher])
  d = theta - mu0
  terms = grad * d - (1.0 - gamma) * fisher * d**2 - gamma * prior_std**2 * fisher
  return terms if per_parameter else jnp.sum(terms)


@dataclasses.dataclass(frozen=True)
class SoftResetConfig:
  """Configuration of the soft-reset wrapper.

  Attributes:
    granularity: "layer" (one γ per pytree leaf) or "parameter" (one γ per scalar parameter).
    initial_gamma: γ at the start, in (0, 1).
    learn_drift: whether γ is estimated online; otherwise it stays at initial_gamma.
    drift_learning_rate: Adam step size on log δ (γ = exp(−δ/2)).
    min_log_delta: floor of log δ, so γ ≤ exp(−exp(min_log_delta)/2) < 1 stays learnable.
    max_log_delta: ceiling of log δ (γ ≥ exp(−exp(max_log_delta)/2)).
    lr_boost: κ = s₀²/sₜ² ≥ 1; the update is scaled by γ² + (1 − γ²) κ.
    prior_std: s₀; None takes each leaf's standard deviation at initialisation.
    perturb: whether to add the drift's noise √(1 − γ²) s₀ ε (shrink-and-perturb style).
    fisher_decay: decay of the exponential average of g².
    seed: seed of the perturbation noise.
  """
  granularity: str = PER_PARAMETER
  initial_gamma: float = 0.999
  learn_drift: bool = True
  drift_learning_rate: float = 1.0
  min_log_delta: float = -8.0  # γ ≤ 1 − 1.7e-4: close enough to 1, and a shift is met in a few steps.
  max_log_delta: float = -3.9  # γ ≥ 0.99 per step: a soft reset (a 1 % pull per step at most).
  lr_boost: float = 50.0
  prior_std: Optional[float] = None
  perturb: bool = False
  fisher_decay: float = 0.99
  seed: int = 0

  def __post_init__(self):
    if self.granularity not in (PER_LAYER, PER_PARAMETER):
      raise ValueError(f"granularity={self.granularity!r}; expected {PER_LAYER!r} or {PER_PARAMETER!r}")
    if not 0.0 < self.initial_gamma < 1.0:
      raise ValueError(f"initial_gamma={self.initial_gamma} must lie in (0, 1)")
    if self.min_log_delta >= self.max_log_delta:
      raise ValueError(f"min_log_delta={self.min_log_delta} must be < max_log_delta={self.max_log_delta}")
    if self.lr_boost < 1.0:
      raise ValueError(f"lr_boost={self.lr_boost} must be >= 1 (prior variance >= posterior variance)")
    if self.prior_std is not None and self.prior_std < 0:
      raise ValueError(f"prior_std={self.prior_std} must be >= 0")
    if not 0.0 <= self.fisher_decay < 1.0:
      raise ValueError(f"fisher_decay={self.fisher_decay} must lie in [0, 1)")


class SoftResetState(NamedTuple):
  """State of `soft_reset`."""
  inner_state: optax.OptState
  log_delta: chex.ArrayTree  # Per leaf: shape=() (layer) or the leaf's shape (parameter).
  log_delta_opt_state: optax.OptState
  fisher: chex.ArrayTree  # Average of g², params' shapes.
  key: Array
  count: Array  # shape=(), dtype=jnp.int32


def gammas(state: SoftResetState) -> chex.ArrayTree:
  """γ per leaf (or per parameter) from a `SoftResetState`."""
  return jax.tree_util.tree_map(lambda ld: jnp.exp(-0.5 * jnp.exp(ld)), state.log_delta)


def soft_reset(inner: optax.GradientTransformation, init_params: chex.ArrayTree,
               config: SoftResetConfig = SoftResetConfig()) -> optax.GradientTransformation:
  """Wraps an optax optimiser with the soft parameter reset (Galashov et al. 2024, arXiv 2411.04034).

  Args:
    inner: the optimiser whose updates are applied after the drift (e.g. optax.adam(1e-3)).
    init_params: μ₀, the parameters at initialisation (s₀ is their per-leaf std unless configured).
    config: a `SoftResetConfig`.

  Returns:
    An optax GradientTransformation; its `update` needs `params`.
  """
  c = config
  mu0 = jax.tree_util.tree_map(jnp.asarray, init_params)
  if c.prior_std is None:
    prior_std = jax.tree_util.tree_map(lambda p: jnp.std(p), mu0)
  else:
    prior_std = jax.tree_util.tree_map(lambda p: jnp.asarray(c.prior_std, p.dtype), mu0)
  drift_opt = optax.adam(c.drift_learning_rate)
  initial_log_delta = float(jnp.log(-2.0 * jnp.log(c.initial_gamma)))

  def init_fn(params):
    if c.granularity == PER_LAYER:
      log_delta = jax.tree_util.tree_map(lambda p: jnp.full((), initial_log_delta, p.dtype), params)
    else:
      log_delta = jax.tree_util.tree_map(lambda p: jnp.full(p.shape, initial_log_delta, p.dtype),
                                         params)
    return SoftResetState(
        inner_state=inner.init(params),
        log_delta=log_delta,
        log_delta_opt_state=drift_opt.init(log_delta),
        fisher=jax.tree_util.tree_map(jnp.zeros_like, params),
        key=jax.random.PRNGKey(c.seed),
        count=jnp.zeros((), jnp.int32))

  def update_fn(grads, state, params=None):
    if params is None:
      raise ValueError("soft_reset needs params: call update(grads, state, params)")
    fisher = jax.tree_util.tree_map(
        lambda f, g: c.fisher_decay * f + (1.0 - c.fisher_decay) * g**2, state.fisher, grads)

    # 1. One Adam step on log δ, on the drift objective J (chain rule through γ = exp(−e^{log δ}/2)).
    log_delta = state.log_delta
    log_delta_opt_state = state.log_delta_opt_state
    if c.learn_drift:
      def log_delta_grad(ld, g, p, m, f, s):
        gamma = jnp.exp(-0.5 * jnp.exp(ld))
        dj_dgamma = drift_objective_grad(g, p, m, f, gamma, s,
                                         per_parameter=c.granularity == PER_PARAMETER)
        return dj_dgamma * (-0.5 * gamma * jnp.exp(ld))
      ld_grads = jax.tree_util.tree_map(log_delta_grad, log_delta, grads, params, mu0, fisher,
                                        prior_std)
      ld_updates, log_delta_opt_state = drift_opt.update(ld_grads, log_delta_opt_state)
      log_delta = jax.tree_util.tree_map(
          lambda ld, u: jnp.clip(ld + u, c.min_log_delta, c.max_log_delta), log_delta, ld_updates)
    gamma = jax.tree_util.tree_map(lambda ld: jnp.exp(-0.5 * jnp.exp(ld)), log_delta)

    # 2. Drift the starting point towards μ₀ (with optional noise), then the boosted inner step.
    inner_updates, inner_state = inner.update(grads, state.inner_state, params)
    key, noise_key = jax.random.split(state.key)
    leaves, treedef = jax.tree_util.tree_flatten(params)
    noise_keys = jax.tree_util.tree_unflatten(treedef, list(jax.random.split(noise_key, len(leaves))))

    def step(p, m, g, s, u, k):
      noise = jax.random.normal(k, p.shape, p.dtype) if c.perturb else jnp.zeros_like(p)
      theta_tilde = ou_drift(p, m, g, s, noise)
      return theta_tilde - p + (g**2 + (1.0 - g**2) * c.lr_boost) * u

    updates = jax.tree_util.tree_map(step, params, mu0, gamma, prior_std, inner_updates, noise_keys)
    return updates, SoftResetState(inner_state, log_delta, log_delta_opt_state, fisher, key,
                                   state.count + 1)

  return optax.GradientTransformation(init_fn, update_fn)
