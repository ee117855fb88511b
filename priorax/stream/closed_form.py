"""Closed-form last layer: the last linear layer is a ridge solution, SGD trains only the backbone.

Galashov, Da Costa, Xu, Hennig, Gretton, "Closed-form last layer optimization", 2025,
https://arxiv.org/abs/2510.04606.

Shapes: N examples, D features, K outputs.

Under the squared loss with ridge penalty β,

  L(W, θ) = 1/(2N) ‖Φ(θ) W − Y‖² + β/2 ‖W‖²,

the optimal last layer for a backbone θ is W*(θ) = (ΦᵀΦ + Nβ I)⁻¹ ΦᵀY, and by the envelope theorem
∇θ L(W*(θ), θ) = ∂θ L(W, θ)|_{W = W*}: the backbone's gradient needs no backpropagation through the
inverse. Stochastic version: the feature statistics are accumulated over batches with a forgetting
factor λ (stale features from earlier backbones fade out),

  A ← λ A + Φ_Bᵀ Φ_B,   C ← λ C + Φ_Bᵀ Y_B,   n ← λ n + B,   W = (A + n β I)⁻¹ C,

then one SGD step on the backbone at W (held fixed).
"""

import dataclasses
from typing import Callable, NamedTuple, Tuple

import chex
import jax
import jax.numpy as jnp
import optax

Array = jax.Array


def ridge_solution(phi: Array, y: Array, beta: float) -> Array:
  """W* = (ΦᵀΦ + Nβ I)⁻¹ ΦᵀY (Galashov et al. 2025, https://arxiv.org/abs/2510.04606).

  Args:
    phi: features Φ, [N, D].
    y: targets Y, [N, K].
    beta: ridge penalty β > 0 (per example).

  Returns:
    W*, [D, K].
  """
  chex.assert_rank([phi, y], 2)
  chex.assert_equal_shape_prefix([phi, y], 1)
  return solve_from_statistics(phi.T @ phi, phi.T @ y, jnp.asarray(phi.shape[0], phi.dtype), beta)


def solve_from_statistics(gram: Array, cross: Array, count: Array, beta: float) -> Array:
  """W = (A + n β I)⁻¹ C from accumulated statistics A = ΣΦᵀΦ [D, D], C = ΣΦᵀY [D, K], n."""
  chex.assert_rank([gram, cross, count], [2, 2, 0])
  reg = gram + count * beta * jnp.eye(gram.shape[0], dtype=gram.dtype)
  return jax.scipy.linalg.solve(reg, cross, assume_a="pos")


def ridge_loss(w: Array, phi: Array, y: Array, beta: float) -> Array:
  """L(W, Φ) = 1/(2N) ‖Φ W − Y‖² + β/2 ‖W‖², whose minimiser in W is `ridge_solution`.

  Args:
    w: last layer W, [D, K]; phi: [N, D]; y: [N, K]; beta: β.

  Returns:
    Scalar loss.
  """
  chex.assert_rank([w, phi, y], 2)
  return 0.5 * jnp.mean(jnp.sum((phi @ w - y)**2, axis=-1)) + 0.5 * beta * jnp.sum(w**2)


# ----------------------------------------------------------------------------------------------
# Training loop.


@dataclasses.dataclass(frozen=True)
class ClosedFormConfig:
  """Configuration of closed-form last-layer training.

  Attributes:
    beta: ridge penalty β per example.
    forgetting: λ ∈ (0, 1], the decay of the accumulated feature statistics per batch.
    backbone_learning_rate: SGD step size of the backbone (plain SGD worked best in the paper).
  """
  beta: float = 1e-3
  forgetting: float = 0.9
  backbone_learning_rate: float = 0.05

  def __post_init__(self):
    if self.beta <= 0:
      raise ValueError(f"beta={self.beta} must be > 0")
    if not 0.0 < self.forgetting <= 1.0:
      raise ValueError(f"forgetting={self.forgetting} must lie in (0, 1]")
    if self.backbone_learning_rate < 0:
      raise ValueError(f"backbone_learning_rate={self.backbone_learning_rate} must be >= 0")


class ClosedFormState(NamedTuple):
  """State of closed-form last-layer training."""
  backbone_params: chex.ArrayTree
  backbone_opt_state: optax.OptState
  gram: Array  # [D, D]
  cross: Array  # [D, K]
  count: Array  # shape=(); effective number of examples behind the statistics.
  w: Array  # [D, K], the current last layer.


class ClosedFormMetrics(NamedTuple):
  loss: Array  # Batch loss at the new last layer, before the backbone step.


FeaturesFn = Callable[[chex.ArrayTree, Array], Array]


class ClosedFormLastLayer:
  """Backbone by SGD, last layer by ridge regression on forgetting statistics (arXiv 2510.04606)."""

  def __init__(self, config: ClosedFormConfig, features_fn: FeaturesFn, feature_dim: int,
               num_outputs: int):
    self._config = config
    self._features_fn = features_fn
    self._dim = feature_dim
    self._num_outputs = num_outputs
    self._opt = optax.sgd(config.backbone_learning_rate)

  def init(self, backbone_params: chex.ArrayTree) -> ClosedFormState:
    dtype = jax.tree_util.tree_leaves(backbone_params)[0].dtype
    return ClosedFormState(
        backbone_params=backbone_params,
        backbone_opt_state=self._opt.init(backbone_params),
        gram=jnp.zeros((self._dim, self._dim), dtype),
        cross=jnp.zeros((self._dim, self._num_outputs), dtype),
        count=jnp.zeros((), dtype),
        w=jnp.zeros((self._dim, self._num_outputs), dtype))

  def update(self, state: ClosedFormState, x: Array, y: Array
             ) -> Tuple[ClosedFormState, ClosedFormMetrics]:
    """One ridge solve with the batch (x [B, ...], y [B, K]) added, then one backbone SGD step."""
    c = self._config
    phi = self._features_fn(state.backbone_params, x)
    chex.assert_shape(phi, (x.shape[0], self._dim))
    gram = c.forgetting * state.gram + phi.T @ phi
    cross = c.forgetting * state.cross + phi.T @ y
    count = c.forgetting * state.count + x.shape[0]
    w = solve_from_statistics(gram, cross, count, c.beta)

    # Envelope theorem: the backbone gradient at W held fixed (no gradient through the solve).
    def backbone_loss(params):
      return ridge_loss(w, self._features_fn(params, x), y, c.beta)

    loss, grads = jax.value_and_grad(backbone_loss)(state.backbone_params)
    updates, opt_state = self._opt.update(grads, state.backbone_opt_state, state.backbone_params)
    params = optax.apply_updates(state.backbone_params, updates)
    return ClosedFormState(params, opt_state, gram, cross, count, w), ClosedFormMetrics(loss)

  def predict(self, state: ClosedFormState, x: Array) -> Array:
    return self._features_fn(state.backbone_params, x) @ state.w
