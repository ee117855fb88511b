"""Non-stationary online streams built offline (bundled or procedural data), and recovery metrics.

Every stream is a pair (x [T, B, ...], y [T, B]) of T batches in chronological order; learners are
scored on each batch before they learn from it (online error).
"""

from typing import Any, Callable, Optional, Tuple

import haiku as hk
import jax
import jax.numpy as jnp
import numpy as np
import optax

from priorax.stream import soft_reset as sr


def shifting_classification(seed: int, steps: int, shift_every: Optional[int], batch: int = 32,
                            dim: int = 20, classes: int = 10) -> Tuple[np.ndarray, np.ndarray]:
  """Linear-teacher classification whose labels are re-permuted every `shift_every` batches.

  x ~ N(0, I_dim); y = argmax(xᵀW) then a label permutation that changes abruptly at each shift
  (None: a stationary stream).
  """
  rng = np.random.default_rng(seed)
  x = rng.normal(size=(steps, batch, dim)).astype(np.float32)
  y = np.argmax(x @ rng.normal(size=(dim, classes)), axis=-1)
  if shift_every:
    for start in range(shift_every, steps, shift_every):
      y[start:] = rng.permutation(classes)[y[start:]]
  return x, y


def digits_drift_stream(seed: int, steps: int, batch: int = 10, abrupt_every: int = 300,
                        ) -> Tuple[np.ndarray, np.ndarray]:
  """scikit-learn's bundled 8×8 digits (1,797 images, 10 classes) under abrupt and gradual shifts.

  - abrupt label shift: the label permutation is redrawn every `abrupt_every` batches;
  - gradual feature shift: the pixels are rotated continuously towards a fixed random permutation of
    themselves, x_t = cos(α_t) x + sin(α_t) Πx with α_t going from 0 to π/2 over the stream.
  Pixels are standardised and a constant 1 is appended (bias), so x has 65 features.
  """
  from sklearn.datasets import load_digits  # Bundled with scikit-learn: no download.
  data = load_digits()
  images = data.data.astype(np.float32)
  images = (images - images.mean(0)) / (images.std(0) + 1.0)
  rng = np.random.default_rng(seed)
  idx = rng.integers(0, len(images), size=(steps, batch))
  x, y = images[idx], data.target[idx].copy()
  pixel_perm = rng.permutation(images.shape[1])
  alpha = np.linspace(0.0, np.pi / 2, steps, dtype=np.float32)[:, None, None]
  x = np.cos(alpha) * x + np.sin(alpha) * x[..., pixel_perm]
  for start in range(abrupt_every, steps, abrupt_every):
    y[start:] = rng.permutation(10)[y[start:]]
  x = np.concatenate([x, np.ones(x.shape[:-1] + (1,), np.float32)], axis=-1)
  return x, y


def teacher_regression(seed: int, n: int, dim: int = 8, hidden: int = 32, outputs: int = 1
                       ) -> Tuple[np.ndarray, np.ndarray]:
  """A random tanh-MLP teacher, y = tanh(xW₁)W₂, x ~ N(0, I)."""
  rng = np.random.default_rng(seed)
  x = rng.normal(size=(n, dim)).astype(np.float32)
  w1 = rng.normal(size=(dim, hidden)) / np.sqrt(dim)
  w2 = rng.normal(size=(hidden, outputs)) * 2.0 / np.sqrt(hidden)
  return x, (np.tanh(x @ w1) @ w2).astype(np.float32)


def recovery_steps(score: np.ndarray, shift_at: int, window: int = 25, fraction: float = 0.9) -> int:
  """Steps after `shift_at` until the moving average of `score` regains `fraction` of its level
  just before the shift (the whole remaining length if it never does)."""
  ma = np.convolve(score, np.ones(window) / window, mode="valid")
  target = fraction * ma[shift_at - window]
  hits = np.nonzero(ma[shift_at:] >= target)[0]
  return int(hits[0]) + window if hits.size else len(score) - shift_at


def steps_to_threshold(losses: np.ndarray, threshold: float) -> int:
  """First index where `losses` falls to `threshold` or below (len(losses) if never)."""
  hits = np.nonzero(np.asarray(losses) <= threshold)[0]
  return int(hits[0]) if hits.size else len(losses)


def train_online_classifier(make_opt: Callable[[Any], optax.GradientTransformation], x: np.ndarray,
                            y: np.ndarray, seed: int = 0, hidden: int = 64
                            ) -> Tuple[np.ndarray, np.ndarray]:
  """Online training of an MLP classifier, one optimiser step per batch.

  Args:
    make_opt: maps the initial parameters to an optax optimiser (e.g. a `soft_reset` wrapper).
    x: [T, B, D] inputs; y: [T, B] labels.
    seed: initialisation seed.
    hidden: width of the two hidden layers.

  Returns:
    (accuracy of each batch before its update [T], mean γ over parameters [T]; 1 without soft reset).
  """
  classes = int(y.max()) + 1
  net = hk.without_apply_rng(hk.transform(lambda inp: hk.nets.MLP([hidden, hidden, classes])(inp)))
  x, y = jnp.asarray(x), jnp.asarray(y)
  params = net.init(jax.random.PRNGKey(seed), x[0])
  opt = make_opt(params)

  def loss_fn(p, xb, yb):
    logits = net.apply(p, xb)
    return -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(logits), yb[:, None], -1)), logits

  def body(carry, batch):
    p, s = carry
    (_, logits), g = jax.value_and_grad(loss_fn, has_aux=True)(p, *batch)
    updates, s = opt.update(g, s, p)
    if isinstance(s, sr.SoftResetState):
      leaves = jax.tree_util.tree_leaves(sr.gammas(s))
      mean_gamma = sum(jnp.sum(l) for l in leaves) / sum(l.size for l in leaves)
    else:
      mean_gamma = jnp.ones(())
    return (optax.apply_updates(p, updates), s), (jnp.mean(jnp.argmax(logits, -1) == batch[1]),
                                                  mean_gamma)

  run = jax.jit(lambda p, s: jax.lax.scan(body, (p, s), (x, y))[1])
  acc, gamma = run(params, opt.init(params))
  return np.asarray(acc), np.asarray(gamma)
