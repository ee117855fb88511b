"""NEVIS-style stream protocol: learners see a chronological stream of tasks; error and compute count.

Bornschein et al., "NEVIS'22: A Stream of 100 Tasks Sampled from 30 Years of Computer Vision
Research", JMLR 2023, https://arxiv.org/abs/2211.11747 (protocol read from google-deepmind/dm_nevis):
a learner has `init() -> state`, `train(task, state) -> (state, resources)` and
`predict(task, state, x)`; hyper-parameters are searched within each task on its dev split and the
compute of *every* trial counts; the metrics are the test error per task, its stream average, and
compute in FLOPs (steps × XLA's cost estimate of one update, plus the dev evaluations).

Baselines: `independent` (from scratch on every task), `previous` (fine-tune the backbone of the
last task's model, with a new head for the new label space) and dynamic kNN (`knn`: every task's
backbone is kept; the one whose features classify the new task's dev split best under a k-nearest-
neighbour probe on its train split is fine-tuned, and the probes' compute counts). Option
`prune_fraction` gives the
zero-shot structured pruning of Caccia et al. 2023 ("On Anytime Learning at Macroscale", and the
compute-optimal transfer study; https://arxiv.org/abs/2106.09563): before fine-tuning, the hidden
units whose incoming weights have the smallest L2 norm are removed, so the pruned backbone is
cheaper to train and evaluate.
"""

import abc
import dataclasses
import time
from typing import Any, Callable, Dict, List, NamedTuple, Optional, Sequence, Tuple

import haiku as hk
import jax
import jax.numpy as jnp
import numpy as np
import optax

from priorax.stream import datasets

Array = jax.Array
SCRATCH = "scratch"
PREVIOUS = "previous"
KNN = "knn"


class Resources(NamedTuple):
  """Compute spent on one task, over all hyper-parameter trials."""
  flops: float
  wall_time_s: float
  steps: int


class Learner(abc.ABC):
  """The NEVIS learner interface."""

  @abc.abstractmethod
  def init(self) -> Any:
    """Returns the learner's state before the first task."""

  @abc.abstractmethod
  def train(self, task: datasets.Task, state: Any) -> Tuple[Any, Resources]:
    """Trains on `task` (its train and dev splits), returning the new state and the compute spent."""

  @abc.abstractmethod
  def predict(self, task: datasets.Task, state: Any, x: np.ndarray) -> np.ndarray:
    """Predicted labels [N] for inputs x [N, ...] of `task`."""


# ----------------------------------------------------------------------------------------------
# Networks and pruning.


def _backbone(hidden_sizes: Sequence[int], x: Array) -> Array:
  """ReLU MLP (`backbone/~/linear_i`) on flattened images; call inside hk.transform."""
  x = jnp.reshape(x, (x.shape[0], -1))
  return hk.nets.MLP(list(hidden_sizes), activate_final=True, name="backbone")(x)


def make_network(hidden_sizes: Sequence[int], num_classes: int) -> hk.Transformed:
  """MLP backbone (`backbone/~/linear_i`, ReLU) and a linear head (`head`) on flattened images."""
  return hk.without_apply_rng(hk.transform(
      lambda x: hk.Linear(num_classes, name="head")(_backbone(hidden_sizes, x))))


def make_backbone(hidden_sizes: Sequence[int]) -> hk.Transformed:
  """The backbone of `make_network` alone (same parameter names): features of flattened images."""
  return hk.without_apply_rng(hk.transform(lambda x: _backbone(hidden_sizes, x)))


def backbone_sizes(params: hk.Params) -> List[int]:
  """Hidden sizes of a backbone, read from its parameters."""
  layers = sorted((k for k in params if k.startswith("backbone/")),
                  key=lambda k: int(k.rsplit("_", 1)[1]))
  return [params[k]["w"].shape[1] for k in layers]


def prune_units(params: hk.Params, keep: Sequence[int]) -> hk.Params:
  """Zero-shot structured pruning (Caccia et al. 2023): in each hidden layer keep the `keep[i]` units
  with the largest L2 norm of incoming weights, removing the others' outgoing weights as well.

  Args:
    params: backbone parameters (`backbone/~/linear_i` with "w" [in, out] and "b" [out]); other
      modules (the head) are dropped, as the next task gets a new head.
    keep: how many units to keep per hidden layer.

  Returns:
    The smaller backbone's parameters.
  """
  layers = sorted((k for k in params if k.startswith("backbone/")),
                  key=lambda k: int(k.rsplit("_", 1)[1]))
  if len(keep) != len(layers):
    raise ValueError(f"keep has {len(keep)} entries for {len(layers)} hidden layers")
  out = {k: dict(params[k]) for k in layers}
  for i, name in enumerate(layers):
    w = out[name]["w"]
    if not 0 < keep[i] <= w.shape[1]:
      raise ValueError(f"keep[{i}]={keep[i]} not in [1, {w.shape[1]}]")
    norms = jnp.linalg.norm(w, axis=0)
    idx = jnp.sort(jnp.argsort(-norms)[:keep[i]])
    out[name] = {"w": w[:, idx], "b": out[name]["b"][idx]}
    if i + 1 < len(layers):
      nxt = out[layers[i + 1]]
      out[layers[i + 1]] = {"w": nxt["w"][idx, :], "b": nxt["b"]}
  return out


def xla_flops(fn: Callable, *args) -> float:
  """FLOPs of one call of `fn(*args)` from XLA's cost analysis of the compiled function.

  XLA's cost analysis does not multiply a loop body (lax.scan, while) by its trip count: measure
  one step of a loop, or a statically unrolled version, and multiply by the number of steps.
  """
  analysis = jax.jit(fn).lower(*args).compile().cost_analysis()
  if isinstance(analysis, (list, tuple)):
    analysis = analysis[0]
  return float(analysis.get("flops", 0.0))


def knn_error(reference_features: Array, reference_labels: Array, query_features: Array,
              query_labels: Array, k: int, num_classes: int) -> Array:
  """Error of a k-nearest-neighbour classifier (cosine similarity, majority vote) on the queries.

  The probe of the dynamic-kNN baseline (Bornschein et al. 2023): how well a stored backbone's
  features separate a new task's classes without any training.

  Args:
    reference_features: [R, F]; reference_labels: [R] int.
    query_features: [Q, F]; query_labels: [Q] int.
    k: number of neighbours (at most R).
    num_classes: size of the label space.

  Returns:
    Error rate, scalar.
  """
  def unit(f):
    return f / (jnp.linalg.norm(f, axis=-1, keepdims=True) + 1e-8)

  similarity = unit(query_features) @ unit(reference_features).T  # [Q, R]
  _, neighbours = jax.lax.top_k(similarity, k)  # [Q, k]
  votes = jnp.sum(jax.nn.one_hot(reference_labels[neighbours], num_classes), axis=1)  # [Q, C]
  return jnp.mean(jnp.argmax(votes, axis=-1) != query_labels)


def knn_select(backbones: Sequence[hk.Params], task: datasets.Task, k: int, max_reference: int,
               seed: int = 0) -> Tuple[int, List[float], float]:
  """Dynamic-kNN model selection: the stored backbone whose features give the lowest kNN error on
  the task's dev split, with (up to `max_reference` of) its train split as the reference set.

  Args:
    backbones: stored backbone parameters (`backbone/~/linear_i`), at least one.
    task: the new task (its train and dev splits are used, never the test split).
    k: neighbours of the probe.
    max_reference: bound on the reference examples (the probe's compute grows with it).
    seed: seed of the reference subsample.

  Returns:
    (index of the chosen backbone (first of equal errors), kNN dev error of each, FLOPs of all
    probes from XLA's cost analysis).
  """
  if not backbones:
    raise ValueError("knn_select needs at least one stored backbone, got none")
  n = len(task.train.x)
  idx = np.sort(np.random.default_rng(seed).permutation(n)[:max_reference])
  x_ref, y_ref = jnp.asarray(task.train.x[idx]), jnp.asarray(task.train.y[idx])
  x_dev, y_dev = jnp.asarray(task.dev.x), jnp.asarray(task.dev.y)
  k = min(k, len(idx))
  errors, flops = [], 0.0
  for params in backbones:
    net = make_backbone(backbone_sizes(params))

    def probe(p, xr, yr, xd, yd, net=net):
      return knn_error(net.apply(p, xr), yr, net.apply(p, xd), yd, k, task.num_classes)

    errors.append(float(jax.jit(probe)(params, x_ref, y_ref, x_dev, y_dev)))
    flops += xla_flops(probe, params, x_ref, y_ref, x_dev, y_dev)
  return int(np.argmin(errors)), errors, flops


# ----------------------------------------------------------------------------------------------
# Fine-tuning learner (independent / previous / dynamic kNN / pruned).


@dataclasses.dataclass(frozen=True)
class FinetuneConfig:
  """Configuration of the fine-tuning learner.

  Attributes:
    init_from: "scratch" (independent baseline), "previous" (fine-tune the last task's backbone)
      or "knn" (fine-tune the stored backbone that scores best under a kNN probe, `knn_select`).
    hidden_sizes: widths of the MLP backbone.
    prune_fraction: with a pretrained start ("previous" or "knn"), the fraction of each hidden
      layer's units removed (lowest incoming-weight norm) before fine-tuning; 0 disables pruning.
    knn_neighbours: k of the kNN probe ("knn").
    knn_reference: at most this many training examples form the probe's reference set ("knn").
    learning_rates: Adam step sizes tried on every task; the dev split picks one, all trials count.
    batch_size: minibatch size.
    epochs: passes over the training split, within [min_steps, max_steps] steps.
    min_steps, max_steps: bounds on the number of steps per trial.
    seed: initialisation and minibatch seed.
  """
  init_from: str = PREVIOUS
  hidden_sizes: Tuple[int, ...] = (256, 128)
  prune_fraction: float = 0.0
  knn_neighbours: int = 5
  knn_reference: int = 1000
  learning_rates: Tuple[float, ...] = (1e-3, 3e-3)
  batch_size: int = 64
  epochs: float = 10.0
  min_steps: int = 50
  max_steps: int = 2000
  seed: int = 0

  def __post_init__(self):
    if self.init_from not in (SCRATCH, PREVIOUS, KNN):
      raise ValueError(f"init_from={self.init_from!r}; expected {SCRATCH!r}, {PREVIOUS!r} or "
                       f"{KNN!r}")
    if not 0.0 <= self.prune_fraction < 1.0:
      raise ValueError(f"prune_fraction={self.prune_fraction} must lie in [0, 1)")
    if self.prune_fraction > 0 and self.init_from == SCRATCH:
      raise ValueError(f"prune_fraction={self.prune_fraction} needs init_from={PREVIOUS!r} or "
                       f"{KNN!r}, got {SCRATCH!r}: pruning applies to a pretrained backbone")
    if self.knn_neighbours < 1 or self.knn_reference < 1:
      raise ValueError(f"knn_neighbours={self.knn_neighbours} and knn_reference="
                       f"{self.knn_reference} must be >= 1")
    if not self.learning_rates or min(self.learning_rates) <= 0:
      raise ValueError(f"learning_rates={self.learning_rates} must be non-empty and positive")
    if not 0 < self.min_steps <= self.max_steps:
      raise ValueError(f"need 0 < min_steps={self.min_steps} <= max_steps={self.max_steps}")


class FinetuneState(NamedTuple):
  params: Optional[hk.Params]  # Backbone + head of the last task's model (None before any task).
  num_tasks: int
  backbones: Tuple[hk.Params, ...] = ()  # Every task's backbone, in order ("knn" only).


class FinetuneLearner(Learner):
  """Trains an MLP on each task with a per-task hyper-parameter search (NEVIS baselines)."""

  def __init__(self, config: FinetuneConfig = FinetuneConfig()):
    self._config = config

  @property
  def config(self) -> FinetuneConfig:
    return self._config

  def init(self) -> FinetuneState:
    return FinetuneState(None, 0)

  def _start_backbone(self, state: FinetuneState, task: datasets.Task
                      ) -> Tuple[Optional[hk.Params], float]:
    """The backbone to fine-tune (None: from scratch) and the FLOPs spent choosing it."""
    c = self._config
    if c.init_from == SCRATCH or state.params is None:
      return None, 0.0
    flops = 0.0
    if c.init_from == KNN:
      chosen, _, flops = knn_select(state.backbones, task, c.knn_neighbours, c.knn_reference,
                                    seed=c.seed * 131 + state.num_tasks)
      backbone = state.backbones[chosen]
    else:
      backbone = {k: v for k, v in state.params.items() if k.startswith("backbone/")}
    if c.prune_fraction > 0:
      target = [max(1, int(round((1.0 - c.prune_fraction) * h))) for h in c.hidden_sizes]
      sizes = backbone_sizes(backbone)
      if any(s > t for s, t in zip(sizes, target)):
        backbone = prune_units(backbone, [min(s, t) for s, t in zip(sizes, target)])
    return backbone, flops

  def train(self, task: datasets.Task, state: FinetuneState) -> Tuple[FinetuneState, Resources]:
    c = self._config
    start = time.time()
    backbone, total_flops = self._start_backbone(state, task)
    sizes = backbone_sizes(backbone) if backbone is not None else list(c.hidden_sizes)
    net = make_network(sizes, task.num_classes)
    n = len(task.train.x)
    steps = int(np.clip(round(c.epochs * n / c.batch_size), c.min_steps, c.max_steps))
    x_train, y_train = jnp.asarray(task.train.x), jnp.asarray(task.train.y)
    x_dev, y_dev = jnp.asarray(task.dev.x), jnp.asarray(task.dev.y)

    def loss_fn(params, xb, yb):
      log_p = jax.nn.log_softmax(net.apply(params, xb))
      return -jnp.mean(jnp.take_along_axis(log_p, yb[:, None], -1))

    def dev_error(params):
      return jnp.mean(jnp.argmax(net.apply(params, x_dev), -1) != y_dev)

    best = None
    for trial, lr in enumerate(c.learning_rates):
      key = jax.random.PRNGKey(c.seed * 7919 + state.num_tasks * 101 + trial)
      params = net.init(key, x_train[:1])
      if backbone is not None:
        params = {**params, **backbone}
      opt = optax.adam(lr)

      def update(params, opt_state, idx, opt=opt):
        grads = jax.grad(loss_fn)(params, x_train[idx], y_train[idx])
        updates, opt_state = opt.update(grads, opt_state)
        return optax.apply_updates(params, updates), opt_state

      opt_state = opt.init(params)
      idx = np.random.default_rng(c.seed * 31 + state.num_tasks * 7 + trial).integers(
          0, n, size=(steps, min(c.batch_size, n)))
      step_flops = xla_flops(update, params, opt_state, jnp.asarray(idx[0]))
      run = jax.jit(lambda p, s, ids: jax.lax.scan(lambda ps, i: (update(*ps, i), None), (p, s),
                                                  ids)[0])
      params, opt_state = run(params, opt_state, jnp.asarray(idx))
      err = float(dev_error(params))
      total_flops += steps * step_flops + xla_flops(dev_error, params)
      if best is None or err < best[0]:
        best = (err, params)
    resources = Resources(total_flops, time.time() - start, steps * len(c.learning_rates))
    backbones = state.backbones
    if c.init_from == KNN:
      backbones += ({k: v for k, v in best[1].items() if k.startswith("backbone/")},)
    return FinetuneState(best[1], state.num_tasks + 1, backbones), resources

  def predict(self, task: datasets.Task, state: FinetuneState, x: np.ndarray) -> np.ndarray:
    net = make_network(backbone_sizes(state.params), task.num_classes)
    return np.asarray(jnp.argmax(net.apply(state.params, jnp.asarray(x)), -1))


# ----------------------------------------------------------------------------------------------
# Runner.


class TaskResult(NamedTuple):
  task: str
  num_train: int
  test_error: float
  flops: float
  wall_time_s: float
  steps: int


def run_stream(learner: Learner, tasks: Sequence[datasets.Task],
               log: Optional[Callable[[str], None]] = None) -> List[TaskResult]:
  """Feeds `tasks` in order: train on each, then score the test split (test data is never trained on)."""
  state = learner.init()
  results = []
  for task in tasks:
    state, resources = learner.train(task, state)
    error = float(np.mean(learner.predict(task, state, task.test.x) != task.test.y))
    results.append(TaskResult(task.name, len(task.train.x), error, resources.flops,
                              resources.wall_time_s, resources.steps))
    if log:
      log(f"{task.name:>14s}: test error {error:.3f}, {resources.flops:.3e} FLOPs, "
          f"{resources.wall_time_s:.1f}s")
  return results


def summarize(results: Sequence[TaskResult]) -> Dict[str, float]:
  """Stream metrics: average test error over tasks, total FLOPs and wall time."""
  return {"stream_test_error": float(np.mean([r.test_error for r in results])),
          "stream_flops": float(np.sum([r.flops for r in results])),
          "stream_wall_time_s": float(np.sum([r.wall_time_s for r in results]))}


LEARNERS: Dict[str, FinetuneConfig] = {
    "independent": FinetuneConfig(init_from=SCRATCH),
    "finetune_previous": FinetuneConfig(init_from=PREVIOUS),
    "finetune_knn": FinetuneConfig(init_from=KNN),
    "finetune_pruned": FinetuneConfig(init_from=PREVIOUS, prune_fraction=0.5),
}


def make_learner(name: str, seed: int = 0, **overrides) -> FinetuneLearner:
  """A named baseline (LEARNERS) with optional config overrides."""
  if name not in LEARNERS:
    raise ValueError(f"unknown learner {name!r}; expected one of {sorted(LEARNERS)}")
  return FinetuneLearner(dataclasses.replace(LEARNERS[name], seed=seed, **overrides))
