"""Dynamic evaluation: online fine-tuning of a sequence model while it is evaluated (predict, then learn).

Rannen-Triki, Bornschein, Pascanu, Hutter, György, Galashov, Teh, Titsias, "Revisiting Dynamic
Evaluation: Online Adaptation for Large Language Models", 2024, https://arxiv.org/abs/2403.01518.

The sequence is cut into chunks x⁽¹⁾, x⁽²⁾, …; for each chunk the model first pays its log-loss

  ℓₖ = −Σₜ log p_θₖ(xₜ⁽ᵏ⁾ | x₍<ₜ₎, hₖ),

then takes one gradient step θₖ₊₁ = θₖ − η ∇_θ ℓₖ on the chunk it has just seen (the recurrent
state hₖ is carried across chunks and treated as a constant: truncated backpropagation). Only the
parameters selected by `trainable` move (the paper found the MLP blocks, or a low-rank adapter,
with a small constant step size best). With η = 0 this is static evaluation.

Usable by any recurrent haiku model written as `unroll(params, inputs [T, ...], state) ->
(logits [T, V], state)`, e.g. the belief model of meta-RL.
"""

import dataclasses
from typing import Any, Callable, NamedTuple, Optional, Tuple

import chex
import haiku as hk
import jax
import jax.numpy as jnp
import numpy as np

Array = jax.Array
UnrollFn = Callable[[hk.Params, Array, Any], Tuple[Array, Any]]


@dataclasses.dataclass(frozen=True)
class DynamicEvalConfig:
  """Configuration of dynamic evaluation.

  Attributes:
    learning_rate: η, the constant SGD step size of the online updates (0 = static evaluation).
    chunk_length: symbols per chunk (predict the chunk, then learn from it).
    trainable_prefix: only parameters of modules whose name starts with this prefix are updated
      ("" updates all).
  """
  learning_rate: float = 0.05
  chunk_length: int = 16
  trainable_prefix: str = ""

  def __post_init__(self):
    if self.learning_rate < 0:
      raise ValueError(f"learning_rate={self.learning_rate} must be >= 0")
    if self.chunk_length < 1:
      raise ValueError(f"chunk_length={self.chunk_length} must be >= 1")


def chunk_log_loss(logits: Array, targets: Array) -> Array:
  """Per-symbol log-loss −log softmax(logits)[target], [T].

  Args:
    logits: [T, V]; targets: [T] int.
  """
  chex.assert_rank([logits, targets], [2, 1])
  return -jnp.take_along_axis(jax.nn.log_softmax(logits), targets[:, None], -1)[:, 0]


class DynamicEvalOutput(NamedTuple):
  nll: Array  # [num_chunks, chunk_length], log-loss of each symbol before its chunk's update.
  params: hk.Params  # Parameters after the last update.


def eval_chunk(unroll: UnrollFn, trainable: hk.Params, frozen: hk.Params, x: Array, y: Array,
               state: Any, learning_rate: float) -> Tuple[hk.Params, Any, Array]:
  """One chunk: pay the log-loss of y given x, then one SGD step on the trainable parameters.

  Args:
    unroll: the model, on the merged `trainable` and `frozen` parameters.
    trainable, frozen: a partition of the parameters; only `trainable` moves.
    x: [L, ...] inputs; y: [L] targets; state: the incoming recurrent state (a constant).
    learning_rate: η (a Python float); 0 skips the backward pass altogether.

  Returns:
    (updated trainable parameters, outgoing state, per-symbol log-loss [L] before the update).
  """

  def loss_fn(train_p):
    logits, new_state = unroll(hk.data_structures.merge(train_p, frozen), x, state)
    nll = chunk_log_loss(logits, y)
    return jnp.mean(nll), (nll, new_state)

  if learning_rate == 0.0:  # Static evaluation: no backward pass is paid for.
    _, (nll, new_state) = loss_fn(trainable)
    return trainable, new_state, nll
  # Gradients only for the trainable part, so XLA does not pay for the frozen modules' backward.
  (_, (nll, new_state)), grads = jax.value_and_grad(loss_fn, has_aux=True)(trainable)
  trainable = jax.tree_util.tree_map(lambda w, g: w - learning_rate * g, trainable, grads)
  return trainable, jax.lax.stop_gradient(new_state), nll


def partition(params: hk.Params, config: "DynamicEvalConfig") -> Tuple[hk.Params, hk.Params]:
  """(trainable, frozen): modules whose name starts with `config.trainable_prefix` are trainable."""
  return hk.data_structures.partition(
      lambda module, name, value: module.startswith(config.trainable_prefix), params)


def dynamic_evaluation(unroll: UnrollFn, params: hk.Params, inputs: Array, targets: Array,
                       initial_state: Any, config: DynamicEvalConfig) -> DynamicEvalOutput:
  """Evaluates `unroll` on a sequence, updating it online after each chunk.

  Args:
    unroll: `(params, inputs [L, ...], state) -> (logits [L, V], state)`.
    params: starting parameters.
    inputs: [T, ...] model inputs; targets: [T] the symbols to predict; T must be a multiple of
      `config.chunk_length` (the tail is dropped otherwise).
    initial_state: recurrent state at the start of the sequence.
    config: a `DynamicEvalConfig`.

  Returns:
    Per-symbol log-losses paid before each update, and the final parameters.
  """
  n = targets.shape[0] // config.chunk_length
  length = n * config.chunk_length
  xs = jnp.reshape(inputs[:length], (n, config.chunk_length) + inputs.shape[1:])
  ys = jnp.reshape(targets[:length], (n, config.chunk_length))
  trainable, frozen = partition(params, config)

  def body(carry, chunk):
    train_p, state = carry
    train_p, new_state, nll = eval_chunk(unroll, train_p, frozen, *chunk, state,
                                         config.learning_rate)
    return (train_p, new_state), nll

  (final_trainable, _), nll = jax.lax.scan(body, (trainable, initial_state), (xs, ys))
  return DynamicEvalOutput(nll, hk.data_structures.merge(final_trainable, frozen))


# ----------------------------------------------------------------------------------------------
# A small recurrent sequence model and a drifting symbol source.


def make_lstm_model(vocab_size: int, hidden_size: int = 64, *, static_unroll: bool = False):
  """LSTM language model: embed → LSTM → MLP block (residual) → logits.

  `static_unroll=True` unrolls time in Python (same parameters): XLA's cost analysis does not
  multiply a loop body by its trip count, so FLOPs are measured on the statically unrolled model.

  Returns:
    (init(key, inputs [T]) -> params, unroll(params, inputs [T], state) -> (logits, state),
     initial_state() -> state).
  """

  def core():
    return hk.LSTM(hidden_size, name="lstm")

  def forward(tokens, state):
    embed = hk.Embed(vocab_size, hidden_size, name="embed")(tokens)
    out, state = (hk.static_unroll if static_unroll else hk.dynamic_unroll)(core(), embed, state)
    h = out + hk.nets.MLP([hidden_size, hidden_size], name="mlp")(out)
    return hk.Linear(vocab_size, name="readout")(h), state

  transformed = hk.without_apply_rng(hk.transform(forward))
  initial = hk.without_apply_rng(hk.transform(lambda: core().initial_state(None)))

  def initial_state():
    return initial.apply(initial.init(None))

  def init(key, tokens):
    return transformed.init(key, tokens, initial_state())

  return init, transformed.apply, initial_state


def drifting_markov_sequence(seed: int, length: int, vocab_size: int = 8, regimes: int = 2,
                             switch_every: Optional[int] = None, gradual: bool = False,
                             concentration: float = 0.1) -> Tuple[np.ndarray, np.ndarray]:
  """Symbols from a first-order Markov chain whose transition matrix drifts.

  Regime r has a sparse random transition matrix Aᵣ (Dirichlet(concentration) rows). With `gradual`
  the matrix interpolates linearly from A₀ to A₁ over the sequence; otherwise it switches abruptly
  to the next regime every `switch_every` symbols (None: regime 0 throughout).

  Returns:
    (symbols [length] int32, the regime index or interpolation weight per symbol [length]).
  """
  rng = np.random.default_rng(seed)
  mats = rng.dirichlet(np.full(vocab_size, concentration), size=(regimes, vocab_size))
  out = np.empty(length, np.int32)
  regime = np.zeros(length, np.float32)
  s = int(rng.integers(vocab_size))
  for t in range(length):
    if gradual:
      w = t / max(1, length - 1)
      probs = (1 - w) * mats[0, s] + w * mats[1, s]
      regime[t] = w
    else:
      r = (t // switch_every) % regimes if switch_every else 0
      probs = mats[r, s]
      regime[t] = r
    s = int(rng.choice(vocab_size, p=probs / probs.sum()))
    out[t] = s
  return out, regime
