"""Online-learning benchmark of the supervised-stream modules (issue 3), ≥ 3 seeds each.

1. `online_error` on scikit-learn's digits under abrupt label permutations and a gradual pixel
   rotation (streams.digits_drift_stream): online SGD on a softmax head over the same features, the
   Kalman head (softmax-bound likelihood) with γ fixed to 1, and with γₜ learned on each batch's
   predictive (as an ablation, with the one-hot Gaussian surrogate likelihood); as a diagnostic,
   the static head restarted at every label permutation (an oracle drift). Every
   method's hyper-parameters come from the same protocol: a grid search scored on tuning streams
   (seeds 1000, 1001, …), then one run of the chosen setting on fresh evaluation streams (seeds 0,
   1, …), which alone give the records.
2. `recovery_steps` after an abrupt label permutation (streams.shifting_classification), MLP trained
   online by Adam, plain or wrapped by the soft reset.
3. `steps_to_loss` on a teacher-MLP regression: SGD on the whole network (best learning rate of a
   grid) vs the closed-form last layer with SGD on the backbone (best backbone rate of the same grid).

Writes benchmarks/results/stream_online.json and .png.

  .venv/bin/python -m benchmarks.stream_online [--seeds 3] [--tuning-seeds 2] [--quick]
"""

import argparse
import itertools
import time
from typing import Dict, List, Optional, Tuple, Union

import haiku as hk
import jax
import jax.numpy as jnp
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import optax

from benchmarks import results_io
from priorax.stream import closed_form as cf
from priorax.stream import kalman
from priorax.stream import soft_reset as sr
from priorax.stream import streams

Record = results_io.Record

REGRESSION_LEARNING_RATES = (0.03, 0.1, 0.3, 1.0)

# Online error (part 1): every method's hyper-parameters are chosen by the same protocol, a full grid
# (or a union of grids) scored by the mean online error on TUNING streams (seeds disjoint from the
# evaluation seeds), and the chosen setting is then run once on fresh EVALUATION streams. The Kalman
# heads share the variance grid; the learned drift adds how γₜ is estimated and its step size.
TUNING_SEED_OFFSET = 1000  # Tuning streams use seeds 1000, 1001, ...; evaluation streams 0, 1, ...
KALMAN_VARIANCE_GRID = {
    # s², the inverse curvature of the softmax-bound likelihood (2: Böhning's bound).
    "noise_variance": (2.0, 8.0, 32.0, 128.0, 512.0, 2048.0),
    # s_w², prior and stationary weight variance; with drift it also sets the size of each step
    # (1 − γ²) s_w² of the weights.
    "prior_variance": (0.01, 0.1, 1.0, 10.0),
}
DRIFT_STEPS = 5  # Gradient steps on the drift per batch (learned drifts).
# How γₜ is estimated (kalman.ONLINE: Adam steps carried over batches; kalman.PER_BATCH: plain
# gradient steps from δ = 0 on each batch); the step sizes differ in kind, hence a union of grids.
DRIFT_ESTIMATE_GRIDS = [
    {"drift_estimate": (kalman.ONLINE,), "drift_learning_rate": (0.01, 0.03, 0.1)},
    {"drift_estimate": (kalman.PER_BATCH,), "drift_learning_rate": (0.03, 0.1, 0.3, 1.0)},
]
ONLINE_GRIDS = {
    "online_sgd": {"learning_rate": (0.03, 0.1, 0.3, 1.0, 3.0, 10.0)},
    "kalman_fixed_drift": dict(KALMAN_VARIANCE_GRID),
    "kalman_learned_drift": [{**KALMAN_VARIANCE_GRID, **g} for g in DRIFT_ESTIMATE_GRIDS],
    # Ablation: the one-hot Gaussian surrogate likelihood (a least-squares classifier) in place of
    # the softmax bound, γ following the surrogate's own evidence; its own variance scale.
    "kalman_learned_drift_surrogate": [
        {"noise_variance": (0.03, 0.1, 0.3), "prior_variance": (0.001, 0.01),
         "drift_estimate": (kalman.ONLINE,), "drift_learning_rate": (0.03,)},
        {"noise_variance": (0.03, 0.1, 0.3), "prior_variance": (0.001, 0.01),
         "drift_estimate": (kalman.PER_BATCH,), "drift_learning_rate": (0.1,)},
    ],
    # Diagnostic, not a method: the static filter restarted from the prior at every label
    # permutation, i.e. a drift that knows when the jumps come (γ = 0 there, 1 elsewhere).
    "kalman_oracle_reset": dict(KALMAN_VARIANCE_GRID),
}
DIGITS_CLASSES = 10
ABRUPT_EVERY = 300  # Batches between label permutations (streams.digits_drift_stream's default).


# ----------------------------------------------------------------------------------------------
# 1. Kalman head vs online SGD.


def online_sgd_errors(x: np.ndarray, y: np.ndarray, learning_rate: float) -> np.ndarray:
  """Softmax-regression head on the same features as the Kalman head (w₀ = 0), one SGD step per
  batch on the batch's cross-entropy; error of each batch before its step.

  Args:
    x: [N, T, B, D] features of N streams; y: [N, T, B] labels.
    learning_rate: SGD step size.

  Returns:
    Online error per stream and batch, [N, T].
  """

  def body(w, batch):
    xb, yb = batch

    def loss(w):
      log_p = jax.nn.log_softmax(xb @ w)
      return -jnp.mean(jnp.take_along_axis(log_p, yb[:, None], -1)), log_p

    (_, log_p), g = jax.value_and_grad(loss, has_aux=True)(w)
    return w - learning_rate * g, jnp.mean(jnp.argmax(log_p, -1) != yb)

  def run(xs, ys):
    w0 = jnp.zeros((xs.shape[-1], DIGITS_CLASSES), xs.dtype)
    return jax.lax.scan(body, w0, (xs, ys))[1]

  return np.asarray(jax.jit(jax.vmap(run))(jnp.asarray(x), jnp.asarray(y)))


def kalman_errors(x: np.ndarray, y: np.ndarray, config: kalman.KalmanHeadConfig,
                  seeds: List[int]) -> Tuple[np.ndarray, np.ndarray]:
  """The Kalman head on N streams at once (one compilation per config).

  Args:
    x: [N, T, B, D] features; y: [N, T, B] labels; config: the head's configuration.
    seeds: N seeds of the heads' Monte-Carlo keys.

  Returns:
    (online error [N, T], γ used at each batch [N, T]).
  """
  head = kalman.KalmanHead(config, x.shape[-1], DIGITS_CLASSES)

  def run(key, xs, ys):
    return jax.lax.scan(lambda st, b: head.update(st, *b), head.init(key), (xs, ys))[1]

  keys = jnp.stack([jax.random.PRNGKey(s) for s in seeds])
  metrics = jax.jit(jax.vmap(run))(keys, jnp.asarray(x), jnp.asarray(y))
  return np.asarray(metrics.error), np.asarray(metrics.gamma)


def kalman_config(method: str, hyper: Dict) -> kalman.KalmanHeadConfig:
  """The Kalman head of a benchmark method at one grid point.

  The heads update with the softmax-bound likelihood (kalman.softmax_bound_targets), whose logits are
  on the softmax's own scale, so τ stays 1 (a learned τ and a learned γ both rescale the logits).
  The surrogate ablation keeps the one-hot Gaussian surrogate and γ on its evidence.
  """
  if method in ("kalman_fixed_drift", "kalman_oracle_reset"):
    return kalman.KalmanHeadConfig(
        classification_likelihood=kalman.SOFTMAX_BOUND, initial_gamma=1.0, learn_drift=False,
        learn_temperature=False, **hyper)
  if method == "kalman_learned_drift":
    return kalman.KalmanHeadConfig(
        classification_likelihood=kalman.SOFTMAX_BOUND, initial_gamma=1.0, learn_drift=True,
        drift_objective=kalman.SOFTMAX, drift_steps=DRIFT_STEPS, learn_temperature=False, **hyper)
  if method == "kalman_learned_drift_surrogate":
    return kalman.KalmanHeadConfig(
        classification_likelihood=kalman.SURROGATE, initial_gamma=1.0, learn_drift=True,
        drift_objective=kalman.SURROGATE, drift_steps=DRIFT_STEPS, **hyper)
  raise ValueError(f"unknown method {method!r}")


def _online_method(method: str, hyper: Dict, x: np.ndarray, y: np.ndarray,
                   seeds: List[int]) -> Tuple[np.ndarray, Optional[np.ndarray]]:
  """Runs one method at one grid point on the stacked streams: (errors [N, T], γ [N, T] or None)."""
  if method == "online_sgd":
    return online_sgd_errors(x, y, hyper["learning_rate"]), None
  config = kalman_config(method, hyper)
  if method == "kalman_oracle_reset":
    segments = [kalman_errors(x[:, k:k + ABRUPT_EVERY], y[:, k:k + ABRUPT_EVERY], config, seeds)[0]
                for k in range(0, x.shape[1], ABRUPT_EVERY)]
    return np.concatenate(segments, axis=1), None
  return kalman_errors(x, y, config, seeds)


Grid = Union[Dict[str, Tuple], List[Dict[str, Tuple]]]


def _grid_points(grid: Grid) -> List[Dict]:
  """All points of a grid (a dict of value tuples), or of a union of grids (a list of them)."""
  if isinstance(grid, list):
    return [point for sub in grid for point in _grid_points(sub)]
  names = list(grid)
  return [dict(zip(names, values)) for values in itertools.product(*(grid[n] for n in names))]


def _stack(streams_: List[Tuple[np.ndarray, np.ndarray]]) -> Tuple[np.ndarray, np.ndarray]:
  return np.stack([s[0] for s in streams_]), np.stack([s[1] for s in streams_])


def select_hyper(method: str, grid: Grid, x: np.ndarray, y: np.ndarray,
                 seeds: List[int]) -> Tuple[Dict[str, float], float, List[Tuple[Dict, float]]]:
  """Grid search on tuning streams: the grid point with the lowest mean online error.

  Returns:
    (best hyper-parameters, their mean tuning error, [(point, mean tuning error)] for the grid).
  """
  scored = []
  for hyper in _grid_points(grid):
    errors, _ = _online_method(method, hyper, x, y, seeds)
    score = float(np.mean(errors)) if np.all(np.isfinite(errors)) else float("inf")
    scored.append((hyper, score))
    print(f"  {method} {hyper}: tuning online error {score:.4f}", flush=True)
  best, best_score = min(scored, key=lambda p: p[1])  # First of equal scores: grid order.
  subgrid = next(g for g in (grid if isinstance(grid, list) else [grid]) if best in _grid_points(g))
  for name, value in best.items():
    if len(subgrid[name]) > 2 and value in (subgrid[name][0], subgrid[name][-1]):
      print(f"  note: {method} {name}={value} lies on the edge of its grid", flush=True)
  return best, best_score, scored


def run_kalman(eval_seeds: List[int], num_tuning_seeds: int, steps: int):
  """Tunes every method on tuning streams, then evaluates the chosen setting on fresh streams.

  Returns:
    (curves {method: {seed: errors [T]}}, learned γ {seed: [T]}, selected {method: (hyper, score)}).
  """
  tuning_seeds = [TUNING_SEED_OFFSET + i for i in range(num_tuning_seeds)]
  assert not set(tuning_seeds) & set(eval_seeds), (tuning_seeds, eval_seeds)
  tune_x, tune_y = _stack([streams.digits_drift_stream(s, steps, abrupt_every=ABRUPT_EVERY)
                           for s in tuning_seeds])
  eval_x, eval_y = _stack([streams.digits_drift_stream(s, steps, abrupt_every=ABRUPT_EVERY)
                           for s in eval_seeds])
  curves, selected, gammas = {}, {}, {}
  for method, grid in ONLINE_GRIDS.items():
    best, score, _ = select_hyper(method, grid, tune_x, tune_y, tuning_seeds)
    errors, gamma = _online_method(method, best, eval_x, eval_y, eval_seeds)
    curves[method] = dict(zip(eval_seeds, errors))
    selected[method] = (best, score)
    if method == "kalman_learned_drift":
      gammas = dict(zip(eval_seeds, gamma))
    print(f"{method}: selected {best} (tuning error {score:.4f}); evaluation online error "
          f"{errors.mean(1).mean():.4f} ± {errors.mean(1).std():.4f} over seeds {eval_seeds}",
          flush=True)
  return curves, gammas, selected


# ----------------------------------------------------------------------------------------------
# 2. Soft reset vs Adam after an abrupt shift.


def run_soft_reset(seeds: List[int], shift: int, num_shifts: int):
  curves = {"adam": {}, "soft_reset": {}}
  gammas = {}
  steps = {"adam": {}, "soft_reset": {}}
  for s in seeds:
    x, y = streams.shifting_classification(s, steps=(num_shifts + 1) * shift, shift_every=shift)
    for method in ("adam", "soft_reset"):
      make = ((lambda p: optax.adam(1e-3)) if method == "adam"
              else (lambda p: sr.soft_reset(optax.adam(1e-3), p)))
      acc, gamma = streams.train_online_classifier(make, x, y, s)
      curves[method][s] = acc
      if method == "soft_reset":
        gammas[s] = gamma
      steps[method][s] = [streams.recovery_steps(acc, k * shift) for k in range(1, num_shifts + 1)]
    print(f"seed {s}: recovery steps adam {steps['adam'][s]}, soft_reset {steps['soft_reset'][s]}",
          flush=True)
  return curves, gammas, steps


# ----------------------------------------------------------------------------------------------
# 3. Closed-form last layer vs SGD.


def _mlp_features(hidden):
  return hk.without_apply_rng(hk.transform(
      lambda x: jax.nn.tanh(hk.nets.MLP([hidden, hidden], activation=jnp.tanh)(x))))


def regression_losses(method: str, learning_rate: float, seed: int, steps: int, batch: int = 64,
                      hidden: int = 64, n: int = 2048, eval_every: int = 10) -> np.ndarray:
  """Full training-set loss ½‖f(x) − y‖² (mean) every `eval_every` minibatch steps."""
  x, y = streams.teacher_regression(seed, n)
  net = _mlp_features(hidden)
  rng = np.random.default_rng(seed + 1000)
  batches = rng.integers(0, n, size=(steps, batch))
  backbone = net.init(jax.random.PRNGKey(seed), x[:1])
  x, y = jnp.asarray(x), jnp.asarray(y)
  if method == "sgd":
    head = {"w": jax.random.normal(jax.random.PRNGKey(seed + 1), (hidden, 1)) / np.sqrt(hidden),
            "b": jnp.zeros(1)}
    params = (backbone, head)
    opt = optax.sgd(learning_rate)

    def predict(p, xb):
      return net.apply(p[0], xb) @ p[1]["w"] + p[1]["b"]

    def step(carry, idx):
      p, s = carry
      g = jax.grad(lambda p: 0.5 * jnp.mean(jnp.sum((predict(p, x[idx]) - y[idx])**2, -1)))(p)
      u, s = opt.update(g, s)
      return (optax.apply_updates(p, u), s), None

    carry = (params, opt.init(params))
    full_loss = lambda c: 0.5 * jnp.mean(jnp.sum((predict(c[0], x) - y)**2, -1))
  else:
    def features(p, xb):  # A constant feature stands in for the bias of the last layer.
      phi = net.apply(p, xb)
      return jnp.concatenate([phi, jnp.ones(phi.shape[:-1] + (1,), phi.dtype)], -1)

    learner = cf.ClosedFormLastLayer(
        cf.ClosedFormConfig(beta=1e-4, forgetting=0.9, backbone_learning_rate=learning_rate),
        features, hidden + 1, 1)

    def step(state, idx):
      return learner.update(state, x[idx], y[idx])[0], None

    carry = learner.init(backbone)
    full_loss = lambda st: 0.5 * jnp.mean(jnp.sum((learner.predict(st, x) - y)**2, -1))

  @jax.jit
  def chunk(c, idx):
    c, _ = jax.lax.scan(step, c, idx)
    return c, full_loss(c)

  losses = []
  for k in range(0, steps, eval_every):
    carry, loss = chunk(carry, jnp.asarray(batches[k:k + eval_every]))
    losses.append(float(loss))
  return np.asarray(losses)


def run_closed_form(seeds: List[int], steps: int, eval_every: int = 10):
  curves = {}
  for method in ("sgd", "closed_form_last_layer"):
    best = None
    for lr in REGRESSION_LEARNING_RATES:
      per_seed = {s: regression_losses("sgd" if method == "sgd" else "cf", lr, s, steps,
                                       eval_every=eval_every) for s in seeds}
      final = np.mean([c[-1] for c in per_seed.values()])
      print(f"  {method} lr={lr}: final training loss {final:.4f}", flush=True)
      if np.isfinite(final) and (best is None or final < best[0]):
        best = (final, lr, per_seed)
    print(f"{method}: best lr={best[1]}", flush=True)
    curves[method] = best[2]
  # Threshold: twice the best final loss SGD reaches, so SGD crosses it too.
  threshold = 2.0 * np.mean([c[-1] for c in curves["sgd"].values()])
  return curves, threshold


# ----------------------------------------------------------------------------------------------


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--seeds", type=int, default=3, help="evaluation seeds")
  parser.add_argument("--tuning-seeds", type=int, default=2,
                      help="tuning streams of the online-error grid search (disjoint seeds)")
  parser.add_argument("--quick", action="store_true", help="tiny budgets (a smoke test)")
  args = parser.parse_args()
  seeds = list(range(args.seeds))
  kalman_steps, shift, regression_steps = (200, 300, 200) if args.quick else (1500, 1500, 3000)
  eval_every = 10
  records: List[Record] = []
  t0 = time.time()

  print("== online_error (digits, abrupt + gradual shifts)", flush=True)
  kalman_curves, kalman_gammas, selected = run_kalman(seeds, args.tuning_seeds, kalman_steps)
  after_shift = np.zeros(kalman_steps, bool)  # The first 50 batches after each label permutation.
  for start in range(ABRUPT_EVERY, kalman_steps, ABRUPT_EVERY):
    after_shift[start:start + 50] = True
  for method, per_seed in kalman_curves.items():
    for s, errors in per_seed.items():
      records.append(Record("digits_drift", method, "online_error", float(errors.mean()),
                            "fraction", s, int(errors.size * 10)))
      if after_shift.any():  # (--quick streams are too short for a shift.)
        # The same curve split: recovery after the abrupt shifts, and the batches in between.
        records.append(Record("digits_drift", method, "online_error_after_shift",
                              float(errors[after_shift].mean()), "fraction", s))
        records.append(Record("digits_drift", method, "online_error_between_shifts",
                              float(errors[~after_shift].mean()), "fraction", s))
    hyper, tuning_error = selected[method]
    records.append(Record("digits_drift_tuning", method, "tuning_online_error", tuning_error,
                          "fraction"))
    for name, value in hyper.items():
      if isinstance(value, str):  # A choice (drift_objective): named in the metric.
        records.append(Record("digits_drift_tuning", method, f"selected_{name}_{value}", 1.0,
                              "indicator"))
      else:
        records.append(Record("digits_drift_tuning", method, f"selected_{name}", float(value),
                              "hyperparameter"))

  print("== recovery_steps (label permutation every %d steps)" % shift, flush=True)
  reset_curves, reset_gammas, reset_steps = run_soft_reset(seeds, shift, num_shifts=2)
  for method, per_seed in reset_steps.items():
    for s, values in per_seed.items():
      records.append(Record("label_shift_mlp", method, "recovery_steps", float(np.mean(values)),
                            "steps", s))

  print("== steps_to_loss (teacher regression)", flush=True)
  cf_curves, threshold = run_closed_form(seeds, regression_steps, eval_every)
  for method, per_seed in cf_curves.items():
    for s, losses in per_seed.items():
      records.append(Record("teacher_regression", method, "steps_to_loss",
                            float(eval_every * (streams.steps_to_threshold(losses, threshold) + 1)),
                            "steps", s))
      records.append(Record("teacher_regression", method, "final_training_loss", float(losses[-1]),
                            "mse/2", s))

  path = results_io.write_results("stream_online", records)
  _plot(kalman_curves, kalman_gammas, reset_curves, reset_gammas, shift, cf_curves, threshold,
        eval_every, path[:-len(".json")] + ".png")
  print(f"wrote {path} in {time.time() - t0:.0f}s")
  _summary(records)


def _summary(records: List[Record]):
  by = {}
  for r in records:
    by.setdefault((r.metric, r.method), []).append(r.value)
  for (metric, method), values in sorted(by.items()):
    print(f"{metric:22s} {method:24s} mean {np.mean(values):9.4f}  sd {np.std(values):8.4f}  n={len(values)}")


def _plot(kalman_curves, kalman_gammas, reset_curves, reset_gammas, shift, cf_curves, threshold,
          eval_every, path):
  fig, axes = plt.subplots(1, 5, figsize=(25, 4))
  window = 50
  for method, per_seed in kalman_curves.items():
    mean = np.mean(list(per_seed.values()), axis=0)
    axes[0].plot(np.convolve(mean, np.ones(window) / window, mode="valid"), label=method)
  axes[0].set(title="digits drift stream: online error (evaluation seeds)", xlabel="batch",
              ylabel="error (50-batch MA)")
  axes[0].legend()
  for s, gamma in kalman_gammas.items():
    axes[4].plot(gamma, lw=0.8, label=f"seed {s}")
  axes[4].set(title="kalman_learned_drift: γ per batch", xlabel="batch", ylabel="γ")
  axes[4].legend()
  for method, per_seed in reset_curves.items():
    mean = np.mean(list(per_seed.values()), axis=0)
    axes[1].plot(np.convolve(mean, np.ones(25) / 25, mode="valid"), label=method)
  axes[1].set(title=f"label permutation every {shift} steps", xlabel="step", ylabel="accuracy (MA)")
  axes[1].legend()
  axes[2].plot(np.mean(list(reset_gammas.values()), axis=0))
  axes[2].set(title="soft reset: mean γ over parameters", xlabel="step", ylabel="γ")
  for method, per_seed in cf_curves.items():
    mean = np.mean(list(per_seed.values()), axis=0)
    axes[3].plot(eval_every * np.arange(1, mean.size + 1), mean, label=method)
  axes[3].axhline(threshold, color="k", ls="--", lw=0.8, label="threshold")
  axes[3].set(title="teacher regression: training loss", xlabel="step", ylabel="½ MSE", yscale="log")
  axes[3].legend()
  fig.tight_layout()
  fig.savefig(path, dpi=100)


if __name__ == "__main__":
  main()
