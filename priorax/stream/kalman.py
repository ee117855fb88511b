"""Kalman-filter head: an online Bayesian linear regressor/classifier over features, with drift.

Titsias, Galashov, Rannen-Triki, Pascanu, Teh, Bornschein, "Kalman Filter for Online
Classification of Non-Stationary Data", ICLR 2024, https://arxiv.org/abs/2306.08448.

Shapes: B batch, D feature dimension, K outputs (regression targets or classes), S Monte-Carlo samples.

The last-layer weights W ∈ ℝ^{D×K} follow a linear-Gaussian state-space model; the K columns share
one feature-space covariance P ∈ ℝ^{D×D} (their posteriors differ only in their means):

  drift        p(wₜ | wₜ₋₁) = N(γ wₜ₋₁, (1 − γ²) s_w² I)      (stationary variance s_w²)
  observation  p(yₜ | wₜ, φₜ) = N(wₜᵀ φₜ, s² I)

γ = exp(−δ/2), δ ≥ 0, is learned online by gradient steps on the one-step-ahead predictive
log-likelihood; γ = 1 (δ = 0) is a static model, and the filter then equals the batch posterior.
The steps are taken on δ itself, projected onto δ ≥ 0 (default), or on log δ. On log δ the gradient
is δ·∂L/∂δ, which vanishes as γ → 1: after a stationary stretch has driven δ to ~1e-5, an abrupt shift
moves log δ by < 1 in tens of batches, so the filter does not forget. On δ the gradient at γ = 1 is
finite and a shift raises δ within a few batches.

Classification *(reconstructed from summaries of the paper)*: the softmax likelihood is replaced by
a Gaussian one, so that the Kalman recursions (and the shared covariance) still apply; class
probabilities are a Monte-Carlo average of softmax(f / τ) over the Gaussian predictive logits
f ~ N(Wᵀφ mean, φᵀPφ I), with a temperature τ learned with γ. Two Gaussian likelihoods:
  - "surrogate": the labels' one-hot vectors are the Gaussian targets (a least-squares classifier);
  - "softmax_bound": a quadratic expansion of the softmax log-likelihood at the predicted logits with
    an isotropic curvature 1/s² (Böhning's bound of the softmax Hessian when s² ≤ 2), i.e. Gaussian
    pseudo-targets ỹ = f₀ + s²(y − softmax(f₀)); the filter then takes a covariance-preconditioned
    Newton step on the cross-entropy, the classifier online SGD learns, instead of on the squared
    error to one-hot vectors.

The drift γₜ of a batch is estimated from that batch's predictive log-likelihood before the filter
absorbs it, and the filter forgets by that γₜ (the batch's own labels say whether a jump happened;
the error of the batch is scored before, and its argmax does not depend on γ). Either "online": δ
is carried over from batch to batch and moved by Adam steps, or "per_batch": δₜ is re-estimated on
each batch from δ = 0 (no drift) by plain gradient steps, an empirical-Bayes estimate of a
time-varying γₜ that can drop to ≈ 0 at a jump and return to 1 on the next batch.
"""

import dataclasses
from typing import Callable, NamedTuple, Optional, Tuple

import chex
import jax
import jax.numpy as jnp
import optax

Array = jax.Array

REGRESSION = "regression"
CLASSIFICATION = "classification"
SURROGATE = "surrogate"
SOFTMAX = "softmax"
SOFTMAX_BOUND = "softmax_bound"
ONLINE = "online"
PER_BATCH = "per_batch"
DELTA = "delta"
LOG_DELTA = "log_delta"


# ----------------------------------------------------------------------------------------------
# Pure recursions.


def gamma_from_log_delta(log_delta: Array) -> Array:
  """γ = exp(−δ/2) with δ = exp(log δ) > 0, so γ ∈ (0, 1); log δ → −∞ gives γ → 1."""
  return jnp.exp(-0.5 * jnp.exp(log_delta))


def drift_terms(delta: Array) -> Tuple[Array, Array]:
  """(γ, 1 − γ²) for γ = exp(−δ/2), δ ≥ 0; 1 − γ² = −expm1(−δ) keeps its precision (and its
  gradient) where γ rounds to 1 in float32."""
  return jnp.exp(-0.5 * delta), -jnp.expm1(-delta)


def drift_predict(mean: Array, cov: Array, gamma: Array, prior_variance: float,
                  one_minus_gamma_sq: Optional[Array] = None) -> Tuple[Array, Array]:
  """Prediction step of the drift model (Titsias et al. 2024, Sec. 3, https://arxiv.org/abs/2306.08448).

    m⁻ = γ m,      P⁻ = γ² P + (1 − γ²) s_w² I

  Args:
    mean: posterior mean m, [D, K].
    cov: posterior covariance P shared by the K columns, [D, D].
    gamma: drift coefficient γ ∈ (0, 1], scalar.
    prior_variance: stationary (and prior) weight variance s_w².
    one_minus_gamma_sq: 1 − γ², if known more accurately than from γ (γ = exp(−δ/2) rounds to 1
      in float32 for δ < 1e-7, while 1 − γ² = −expm1(−δ) does not).

  Returns:
    (m⁻ [D, K], P⁻ [D, D]).
  """
  chex.assert_rank([mean, cov, gamma], [2, 2, 0])
  chex.assert_equal_shape_prefix([mean, cov], 1)
  if one_minus_gamma_sq is None:
    one_minus_gamma_sq = 1.0 - gamma**2
  eye = jnp.eye(cov.shape[0], dtype=cov.dtype)
  return gamma * mean, (1.0 - one_minus_gamma_sq) * cov + one_minus_gamma_sq * prior_variance * eye


def kalman_update(mean_minus: Array, cov_minus: Array, phi: Array, y: Array,
                  noise_variance: float) -> Tuple[Array, Array]:
  """Kalman measurement update with a batch of B observations sharing one state.

    S = Φ P⁻ Φᵀ + s² I_B,   K = P⁻ Φᵀ S⁻¹,   m = m⁻ + K (Y − Φ m⁻),   P = P⁻ − K S Kᵀ

  (Titsias et al. 2024, Sec. 3, https://arxiv.org/abs/2306.08448; with B = 1 this is the textbook
  S = φᵀP⁻φ + s², K = P⁻φ / S, P = P⁻ − K φᵀ P⁻.)

  Args:
    mean_minus: predicted mean m⁻, [D, K].
    cov_minus: predicted covariance P⁻, [D, D].
    phi: features Φ, [B, D].
    y: targets Y, [B, K] (one-hot vectors for classification).
    noise_variance: observation noise s².

  Returns:
    (m [D, K], P [D, D]).
  """
  chex.assert_rank([mean_minus, cov_minus, phi, y], 2)
  chex.assert_equal_shape_prefix([phi, y], 1)
  p_phi_t = cov_minus @ phi.T  # [D, B]
  s = phi @ p_phi_t + noise_variance * jnp.eye(phi.shape[0], dtype=phi.dtype)
  chol = jax.scipy.linalg.cho_factor(s, lower=True)
  gain = jax.scipy.linalg.cho_solve(chol, p_phi_t.T).T  # K = P⁻Φᵀ S⁻¹, [D, B]
  mean = mean_minus + gain @ (y - phi @ mean_minus)
  cov = cov_minus - gain @ p_phi_t.T  # = P⁻ − K S Kᵀ = P⁻ − K Φ P⁻
  return mean, 0.5 * (cov + cov.T)  # Keeps P symmetric against rounding.


def predictive_moments(mean_minus: Array, cov_minus: Array, phi: Array) -> Tuple[Array, Array]:
  """Mean [B, K] and variance [B] of the predictive outputs f = Wᵀφ (noise-free)."""
  chex.assert_rank([mean_minus, cov_minus, phi], 2)
  mu = phi @ mean_minus
  var = jnp.einsum("bd,de,be->b", phi, cov_minus, phi)
  return mu, jnp.maximum(var, 0.0)


def regression_log_likelihood(mean_minus: Array, cov_minus: Array, phi: Array, y: Array,
                              noise_variance: float) -> Array:
  """One-step-ahead predictive log-likelihood, per example.

    log p(yₜ | y₍<ₜ₎) = Σₖ log N(yₜₖ; φₜᵀ m⁻ₖ, φₜᵀ P⁻ φₜ + s²)

  (the marginal of each example; Titsias et al. 2024, Sec. 3.2, https://arxiv.org/abs/2306.08448).

  Args:
    mean_minus: [D, K]; cov_minus: [D, D]; phi: [B, D]; y: [B, K]; noise_variance: s².

  Returns:
    Log-likelihood per example, [B].
  """
  chex.assert_rank([phi, y], 2)
  mu, var = predictive_moments(mean_minus, cov_minus, phi)
  total_var = (var + noise_variance)[:, None]
  return jnp.sum(-0.5 * (jnp.log(2.0 * jnp.pi * total_var) + (y - mu)**2 / total_var), axis=-1)


def classification_log_probs(mean_minus: Array, cov_minus: Array, phi: Array, temperature: Array,
                             noise: Array) -> Array:
  """Monte-Carlo predictive class log-probabilities.

    p(c | φ) ≈ (1/S) Σₛ softmax(fₛ / τ)_c,   fₛ = m⁻ᵀφ + √(φᵀP⁻φ) εₛ,   εₛ ~ N(0, I_K)

  (the predictive of the Gaussian surrogate, Titsias et al. 2024, https://arxiv.org/abs/2306.08448;
  reconstructed from summaries). Reparameterised, so it is differentiable in γ, τ and φ.

  Args:
    mean_minus: [D, K]; cov_minus: [D, D]; phi: [B, D].
    temperature: τ > 0, scalar.
    noise: standard normal draws ε, [S, B, K].

  Returns:
    Log-probabilities, [B, K].
  """
  chex.assert_rank([phi, temperature, noise], [2, 0, 3])
  mu, var = predictive_moments(mean_minus, cov_minus, phi)
  logits = (mu[None] + jnp.sqrt(var)[None, :, None] * noise) / temperature  # [S, B, K]
  log_p = jax.nn.log_softmax(logits, axis=-1)
  return jax.nn.logsumexp(log_p, axis=0) - jnp.log(noise.shape[0])


def softmax_bound_targets(logits: Array, targets: Array, noise_variance: float) -> Array:
  """Gaussian pseudo-targets of a quadratic expansion of the softmax log-likelihood.

  At the predicted logits f₀, with the curvature of −log softmax(f)ᵧ replaced by I / s²:

    log softmax(f)ᵧ ≈ const + (y − p₀)ᵀ(f − f₀) − ‖f − f₀‖² / (2 s²) = const + log N(ỹ; f, s² I),
    ỹ = f₀ + s² (y − p₀),   p₀ = softmax(f₀)

  (the same gradient y − p₀ at f₀ as the softmax log-likelihood). The softmax Hessian
  diag(p) − ppᵀ is ≤ I/2 (Böhning 1992, Ann. Inst. Statist. Math. 44:197), so s² ≤ 2 gives a lower
  bound; a larger s² assumes the flatter curvature of confident predictions. A Kalman update with
  targets ỹ and noise s² is then a Newton step on the softmax likelihood, preconditioned by the
  filter's covariance, and all classes keep one shared covariance.

  Args:
    logits: predicted logits f₀ = Φ m⁻, [B, K].
    targets: one-hot labels y, [B, K].
    noise_variance: s², the inverse of the assumed curvature.

  Returns:
    Pseudo-targets ỹ, [B, K].
  """
  chex.assert_equal_shape([logits, targets])
  return logits + noise_variance * (targets - jax.nn.softmax(logits, axis=-1))


def batch_posterior(phi: Array, y: Array, prior_variance: float, noise_variance: float
                    ) -> Tuple[Array, Array]:
  """Static (γ = 1) Bayesian linear-regression posterior from all data at once.

    P = (ΦᵀΦ / s² + I / s_w²)⁻¹,   m = P Φᵀ Y / s²

  Args:
    phi: [N, D]; y: [N, K]; prior_variance: s_w²; noise_variance: s².

  Returns:
    (m [D, K], P [D, D]).
  """
  chex.assert_rank([phi, y], 2)
  precision = phi.T @ phi / noise_variance + jnp.eye(phi.shape[1], dtype=phi.dtype) / prior_variance
  cov = jnp.linalg.inv(precision)
  return cov @ phi.T @ y / noise_variance, cov


# ----------------------------------------------------------------------------------------------
# Online head: filter + learned drift (+ optional feature fine-tuning).


@dataclasses.dataclass(frozen=True)
class KalmanHeadConfig:
  """Configuration of the Kalman-filter head.

  Attributes:
    likelihood: "regression" (Gaussian targets) or "classification".
    classification_likelihood: classification only; the Gaussian likelihood the filter updates
      with: "surrogate" (one-hot targets) or "softmax_bound" (pseudo-targets of a quadratic
      expansion of the softmax likelihood, `softmax_bound_targets`).
    prior_variance: s_w², the prior and stationary variance of each weight.
    noise_variance: s², the observation noise of the Gaussian likelihood (for "softmax_bound", the
      inverse of the assumed curvature of the softmax log-likelihood).
    initial_gamma: γ at the start; 1.0 (with learn_drift=False) means no drift.
    learn_drift: whether γ is learned by SGD on the predictive log-likelihood.
    drift_parameterisation: what the gradient steps move: "delta", δ itself projected onto δ ≥ 0
      (γ = 1 is reachable and the gradient there is finite, so an abrupt shift is met at once), or
      "log_delta" (δ > 0 always; the gradient δ·∂L/∂δ vanishes as γ → 1).
    drift_estimate: how γₜ of a batch is found: "online", δ carried over from the previous batch and
      moved by `drift_steps` Adam steps, or "per_batch", δₜ re-estimated on each batch from δ = 0 by
      `drift_steps` plain gradient steps (needs the "delta" parameterisation). Either way the
      filter absorbs the batch with the γₜ found on it.
    drift_steps: gradient steps on the drift (and τ) per batch, each on the batch's predictive.
    drift_learning_rate: step size on δ or log δ (Adam for "online", plain gradient for
      "per_batch").
    min_log_delta: "log_delta" only; floor of the learned log δ (1 − γ² ≥ e^{−25} ≈ 1.4e-11), so Adam
      cannot run it to −∞ where it would stop being learnable.
    drift_objective: classification only; what γ (and the features) maximise: "surrogate", the
      Gaussian surrogate's one-step predictive log-likelihood of the one-hot targets (the model's own
      evidence; "surrogate" likelihood only), or "softmax", the log-probability of the label under
      the MC softmax predictive. τ always follows the softmax predictive.
    learn_temperature: classification only; whether τ is learned with γ.
    initial_temperature: τ at the start (classification).
    temperature_learning_rate: Adam step size on log τ. Its own rate, not γ's: the surrogate's
      logits live on the scale of the one-hot targets (≈ [0, 1]), so the calibrated τ is ≈ 0.1, and
      at γ's small step size τ needs hundreds of batches to get there; until it does the predictive
      is under-confident, and the softmax objective then rewards γ → 1 (forgetting shrinks the mean
      logits further), whatever the stream does.
    num_samples: S, Monte-Carlo samples of the predictive logits (classification).
    feature_learning_rate: SGD step size on the feature extractor's parameters; 0 keeps them fixed.
  """
  # Model.
  likelihood: str = CLASSIFICATION
  classification_likelihood: str = SURROGATE
  prior_variance: float = 1.0
  noise_variance: float = 1.0
  # Drift.
  initial_gamma: float = 0.999
  learn_drift: bool = True
  drift_parameterisation: str = DELTA
  drift_estimate: str = ONLINE
  drift_steps: int = 1
  drift_learning_rate: float = 1e-2
  drift_objective: str = SOFTMAX
  min_log_delta: float = -25.0
  # Classification predictive.
  learn_temperature: bool = True
  initial_temperature: float = 1.0
  temperature_learning_rate: float = 0.1
  num_samples: int = 16
  # Representation.
  feature_learning_rate: float = 0.0

  def __post_init__(self):
    if self.likelihood not in (REGRESSION, CLASSIFICATION):
      raise ValueError(f"likelihood={self.likelihood!r}; expected {REGRESSION!r} or {CLASSIFICATION!r}")
    if self.prior_variance <= 0 or self.noise_variance <= 0:
      raise ValueError(f"variances must be > 0, got prior_variance={self.prior_variance}, "
                       f"noise_variance={self.noise_variance}")
    if not 0.0 < self.initial_gamma <= 1.0:
      raise ValueError(f"initial_gamma={self.initial_gamma} must lie in (0, 1]")
    if self.drift_parameterisation not in (DELTA, LOG_DELTA):
      raise ValueError(f"drift_parameterisation={self.drift_parameterisation!r}; expected {DELTA!r} "
                       f"or {LOG_DELTA!r}")
    if self.initial_gamma == 1.0 and self.learn_drift and self.drift_parameterisation == LOG_DELTA:
      raise ValueError("initial_gamma=1.0 with learn_drift=True: δ = 0 is a boundary where "
                       "log δ = −∞; start slightly below 1 (e.g. 0.999), or learn δ itself")
    if min(self.drift_learning_rate, self.temperature_learning_rate,
           self.feature_learning_rate) < 0:
      raise ValueError(f"learning rates must be >= 0, got drift={self.drift_learning_rate}, "
                       f"temperature={self.temperature_learning_rate}, "
                       f"feature={self.feature_learning_rate}")
    if self.initial_temperature <= 0:
      raise ValueError(f"initial_temperature={self.initial_temperature} must be > 0")
    if self.drift_objective not in (SURROGATE, SOFTMAX):
      raise ValueError(f"drift_objective={self.drift_objective!r}; expected {SURROGATE!r} or {SOFTMAX!r}")
    if self.num_samples < 1:
      raise ValueError(f"num_samples={self.num_samples} must be >= 1")
    if self.classification_likelihood not in (SURROGATE, SOFTMAX_BOUND):
      raise ValueError(f"classification_likelihood={self.classification_likelihood!r}; expected "
                       f"{SURROGATE!r} or {SOFTMAX_BOUND!r}")
    if (self.likelihood == CLASSIFICATION and self.classification_likelihood == SOFTMAX_BOUND
        and self.drift_objective == SURROGATE):
      raise ValueError("drift_objective='surrogate' scores the one-hot Gaussian surrogate; with "
                       "classification_likelihood='softmax_bound' use drift_objective='softmax'")
    if self.drift_estimate not in (ONLINE, PER_BATCH):
      raise ValueError(f"drift_estimate={self.drift_estimate!r}; expected {ONLINE!r} or "
                       f"{PER_BATCH!r}")
    if self.drift_estimate == PER_BATCH and self.drift_parameterisation != DELTA:
      raise ValueError("drift_estimate='per_batch' starts each batch at δ = 0, which needs "
                       f"drift_parameterisation={DELTA!r}, got {self.drift_parameterisation!r}")
    if self.drift_steps < 1:
      raise ValueError(f"drift_steps={self.drift_steps} must be >= 1")


class KalmanState(NamedTuple):
  """State of the online head."""
  mean: Array  # [D, K]
  cov: Array  # [D, D]
  drift: Array  # shape=(); δ ("delta") or log δ ("log_delta"), of the last batch; γ = exp(−δ/2).
  log_temperature: Array  # shape=()
  hyper_opt_state: optax.OptState  # Adam moments of (drift, log τ).
  feature_params: chex.ArrayTree  # Parameters of the feature extractor ({} when fixed).
  key: Array
  count: Array  # shape=(), dtype=jnp.int32


class KalmanMetrics(NamedTuple):
  """Per-batch metrics, measured before the batch updates the state (honest online error)."""
  log_likelihood: Array  # Mean one-step predictive log-likelihood (or log-probability of the label).
  error: Array  # Classification: error rate of the predictive argmax; regression: mean squared error.
  gamma: Array  # The γₜ estimated on the batch, with which the filter absorbed it.


FeaturesFn = Callable[[chex.ArrayTree, Array], Array]


def _identity_features(params: chex.ArrayTree, x: Array) -> Array:
  del params
  return x


class KalmanHead:
  """Online Bayesian last layer with learned drift (Titsias et al. 2024, arXiv 2306.08448).

  Each call of `update(state, x, y)` (one batch of the stream) does, in order:
    1. predict with the drift (the last batch's γ, or γ = 1 for "per_batch"), m⁻, P⁻; score the
       batch (error, log-likelihood) before learning from it;
    2. `drift_steps` steps on (δ or log δ, log τ) and, optionally, one SGD step on the feature
       parameters, on the negative one-step predictive log-likelihood of the batch;
    3. predict again with the γₜ so found, and the Kalman measurement update of (m⁻, P⁻) with the
       batch (features as in step 1).
  """

  def __init__(self, config: KalmanHeadConfig, feature_dim: int, num_outputs: int, *,
               features_fn: Optional[FeaturesFn] = None):
    self._config = config
    self._dim = feature_dim
    self._num_outputs = num_outputs
    self._features_fn = features_fn or _identity_features
    # Adam directions for (drift, log τ); each is then scaled by its own step size.
    self._hyper_opt = optax.scale_by_adam()
    self._hyper_learning_rates = (config.drift_learning_rate, config.temperature_learning_rate)

  @property
  def config(self) -> KalmanHeadConfig:
    return self._config

  def init(self, key: Array, feature_params: chex.ArrayTree = None,
           dtype=jnp.float32) -> KalmanState:
    c = self._config
    delta = -2.0 * jnp.log(jnp.asarray(c.initial_gamma, dtype))
    if c.drift_parameterisation == DELTA:
      drift = delta
    elif c.initial_gamma < 1.0:
      drift = jnp.log(delta)
    else:
      drift = jnp.asarray(-jnp.inf, dtype)  # γ = 1 exactly.
    log_temperature = jnp.log(jnp.asarray(c.initial_temperature, dtype))
    hyper = (drift, log_temperature)
    return KalmanState(
        mean=jnp.zeros((self._dim, self._num_outputs), dtype),
        cov=c.prior_variance * jnp.eye(self._dim, dtype=dtype),
        drift=drift,
        log_temperature=log_temperature,
        hyper_opt_state=self._hyper_opt.init(hyper),
        feature_params=feature_params if feature_params is not None else {},
        key=key,
        count=jnp.zeros((), jnp.int32))

  def _targets(self, y: Array, dtype) -> Array:
    if self._config.likelihood == CLASSIFICATION:
      return jax.nn.one_hot(y, self._num_outputs, dtype=dtype)
    return y

  def _score(self, hyper, feature_params, state: KalmanState, x: Array, y: Array, noise: Array):
    """Negative mean predictive log-likelihood and metrics, as a function of what is learned."""
    c = self._config
    drift, log_temperature = hyper
    gamma, one_minus_gamma_sq = drift_terms(drift if c.drift_parameterisation == DELTA
                                            else jnp.exp(drift))
    mean_minus, cov_minus = drift_predict(state.mean, state.cov, gamma, c.prior_variance,
                                          one_minus_gamma_sq)
    phi = self._features_fn(feature_params, x)
    if c.likelihood == REGRESSION:
      ll = regression_log_likelihood(mean_minus, cov_minus, phi, y, c.noise_variance)
      mu, _ = predictive_moments(mean_minus, cov_minus, phi)
      error = jnp.mean(jnp.sum((y - mu)**2, axis=-1))
    else:
      stop = jax.lax.stop_gradient if c.drift_objective == SURROGATE else (lambda a: a)
      log_probs = classification_log_probs(stop(mean_minus), stop(cov_minus), stop(phi),
                                           jnp.exp(log_temperature), noise)
      ll = jnp.take_along_axis(log_probs, y[:, None], axis=-1)[:, 0]
      # With isotropic logit noise the exact predictive ranks the classes as the mean logits do,
      # so the decision uses them rather than the Monte-Carlo estimate (which adds sampling noise).
      mu, _ = predictive_moments(mean_minus, cov_minus, phi)
      error = jnp.mean(jnp.argmax(mu, axis=-1) != y)
    loss = -jnp.mean(ll)
    objective = loss
    if c.likelihood == CLASSIFICATION and c.drift_objective == SURROGATE:
      # γ and the features follow the surrogate model's own evidence; τ the softmax predictive.
      targets = jax.nn.one_hot(y, self._num_outputs, dtype=phi.dtype)
      objective = loss - jnp.mean(regression_log_likelihood(mean_minus, cov_minus, phi, targets,
                                                            c.noise_variance))
    return objective, (KalmanMetrics(-loss, error, gamma), mean_minus, cov_minus, phi)

  def update(self, state: KalmanState, x: Array, y: Array) -> Tuple[KalmanState, KalmanMetrics]:
    """Consumes one batch: x [B, ...] (inputs of features_fn), y [B] int labels or [B, K] targets."""
    c = self._config
    key, noise_key = jax.random.split(state.key)
    noise = jax.random.normal(noise_key, (c.num_samples, x.shape[0], self._num_outputs),
                              state.mean.dtype)
    # Which hyper-parameters move: γ only when learned and not pinned at 1; τ only for classification.
    learnable = c.learn_drift and (c.drift_parameterisation == DELTA or c.initial_gamma < 1.0)
    per_batch = learnable and c.drift_estimate == PER_BATCH
    drift = jnp.zeros_like(state.drift) if per_batch else state.drift
    score = jax.value_and_grad(self._score, argnums=1, has_aux=True)
    (_, (metrics, _, _, phi)), feature_grad = score(
        (drift, state.log_temperature), state.feature_params, state, x, y, noise)

    mask = (jnp.asarray(learnable, state.drift.dtype),
            jnp.asarray(c.learn_temperature and c.likelihood == CLASSIFICATION, state.drift.dtype))

    def hyper_step(carry, _):
      hyper, opt_state = carry
      grad = jax.grad(lambda h: self._score(h, state.feature_params, state, x, y, noise)[0])(hyper)
      grad = jax.tree_util.tree_map(lambda g, m: jnp.nan_to_num(g) * m, grad, mask)
      updates, opt_state = self._hyper_opt.update(grad, opt_state)
      drift_update, temperature_update = jax.tree_util.tree_map(
          lambda u, m, lr: -lr * u * m, updates, mask, self._hyper_learning_rates)
      if per_batch:  # A fresh estimate on this batch: plain gradient steps, no carried moments.
        drift_update = -c.drift_learning_rate * grad[0]
      drift, log_temperature = hyper[0] + drift_update, hyper[1] + temperature_update
      if c.drift_parameterisation == DELTA:
        drift = jnp.maximum(drift, 0.0)  # Projection onto δ ≥ 0 (γ ≤ 1).
      else:
        drift = jnp.maximum(drift, c.min_log_delta)  # (−∞ stays −∞ only when γ is pinned.)
        drift = jnp.where(jnp.isneginf(hyper[0]), hyper[0], drift)
      return ((drift, log_temperature), opt_state), None

    ((drift, log_temperature), hyper_opt_state), _ = jax.lax.scan(
        hyper_step, ((drift, state.log_temperature), state.hyper_opt_state), None,
        length=c.drift_steps)
    feature_params = jax.tree_util.tree_map(
        lambda p, g: p - c.feature_learning_rate * g, state.feature_params, feature_grad)

    # The filter forgets by the γₜ just estimated on this batch, then absorbs the batch.
    gamma, one_minus_gamma_sq = drift_terms(drift if c.drift_parameterisation == DELTA
                                            else jnp.exp(drift))
    mean_minus, cov_minus = drift_predict(state.mean, state.cov, gamma, c.prior_variance,
                                          one_minus_gamma_sq)
    phi = jax.lax.stop_gradient(phi)
    targets = self._targets(y, phi.dtype)
    if c.likelihood == CLASSIFICATION and c.classification_likelihood == SOFTMAX_BOUND:
      targets = softmax_bound_targets(phi @ mean_minus, targets, c.noise_variance)
    mean, cov = kalman_update(mean_minus, cov_minus, phi, targets, c.noise_variance)
    new_state = KalmanState(mean, cov, drift, log_temperature, hyper_opt_state, feature_params,
                            key, state.count + 1)
    return new_state, metrics._replace(gamma=gamma)

  def predict(self, state: KalmanState, x: Array) -> Array:
    """Posterior-mean outputs for x (logits-like scores for classification), [B, K]."""
    phi = self._features_fn(state.feature_params, x)
    return phi @ state.mean
