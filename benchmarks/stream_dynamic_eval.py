"""Dynamic evaluation benchmark (Rannen-Triki et al. 2024): online log-loss under drift, and its cost.

An LSTM language model (64 units, 8 symbols) is pretrained on a sparse Markov chain (regime 0), then
evaluated online on two drifting sequences of 4,096 symbols: `abrupt` (the chain switches between
regime 0 and an unseen regime 1 every 1,024 symbols) and `gradual` (its transition matrix
interpolates from regime 0 to regime 1). Methods: `static` (no updates), `dynamic_eval` (SGD on all
parameters after each 16-symbol chunk), `dynamic_eval_mlp` (only the MLP block moves). Each method's
step size is the best of a small grid on seed 0's abrupt sequence. Records `online_nll` (nats per
symbol) per seed and `eval_flops_per_symbol` (XLA cost analysis of one chunk's evaluation).

  .venv/bin/python -m benchmarks.stream_dynamic_eval [--seeds 3]
"""

import argparse
import time

import jax
import jax.numpy as jnp
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import optax

from benchmarks import results_io
from priorax.stream import dynamic_eval as de
from priorax.stream import protocol

Record = results_io.Record
VOCAB, HIDDEN, CHUNK, LENGTH = 8, 64, 16, 4096
METHODS = {"static": ((0.0,), ""), "dynamic_eval": ((0.03, 0.1, 0.3, 1.0), ""),
           "dynamic_eval_mlp": ((0.03, 0.1, 0.3, 1.0), "mlp")}


def pretrain(seed, steps=400):
  init, unroll, initial_state = de.make_lstm_model(VOCAB, HIDDEN)
  seq, _ = de.drifting_markov_sequence(seed, 20_000, VOCAB)
  params = init(jax.random.PRNGKey(seed), jnp.asarray(seq[:CHUNK]))
  opt = optax.adam(3e-3)
  opt_state = opt.init(params)

  @jax.jit
  def step(p, s, x, y):
    def loss(p):
      return jnp.mean(de.chunk_log_loss(unroll(p, x, initial_state())[0], y))
    value, g = jax.value_and_grad(loss)(p)
    u, s = opt.update(g, s)
    return optax.apply_updates(p, u), s, value

  rng = np.random.default_rng(seed)
  for _ in range(steps):
    j = int(rng.integers(0, len(seq) - 65))
    params, opt_state, value = step(params, opt_state, jnp.asarray(seq[j:j + 64]),
                                    jnp.asarray(seq[j + 1:j + 65]))
  return unroll, initial_state, params, float(value)


def evaluate(unroll, initial_state, params, seq, lr, prefix):
  config = de.DynamicEvalConfig(learning_rate=lr, chunk_length=CHUNK, trainable_prefix=prefix)
  run = jax.jit(lambda p, x, y: de.dynamic_evaluation(unroll, p, x, y, initial_state(), config).nll)
  return np.asarray(run(params, jnp.asarray(seq[:-1]), jnp.asarray(seq[1:]))).ravel()


def chunk_flops(params, lr, prefix):
  """FLOPs per symbol of one chunk's predict (+ update), on the statically unrolled model."""
  _, static_unroll, initial_state = de.make_lstm_model(VOCAB, HIDDEN, static_unroll=True)
  config = de.DynamicEvalConfig(learning_rate=lr, chunk_length=CHUNK, trainable_prefix=prefix)
  trainable, frozen = de.partition(params, config)
  x = jnp.zeros((CHUNK,), jnp.int32)
  fn = lambda t, f: de.eval_chunk(static_unroll, t, f, x, x, initial_state(), lr)
  return protocol.xla_flops(fn, trainable, frozen) / CHUNK


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--seeds", type=int, default=3)
  args = parser.parse_args()
  t0 = time.time()
  records, curves = [], {}
  models = {s: pretrain(s) for s in range(args.seeds)}
  for s, m in models.items():
    print(f"seed {s}: pretraining loss {m[3]:.3f}", flush=True)
  sequences = {
      s: {"abrupt": de.drifting_markov_sequence(s, LENGTH + 1, VOCAB, switch_every=1024)[0],
          "gradual": de.drifting_markov_sequence(s, LENGTH + 1, VOCAB, gradual=True)[0]}
      for s in range(args.seeds)}
  for method, (lrs, prefix) in METHODS.items():
    unroll, initial_state, params, _ = models[0]
    lr = min(lrs, key=lambda lr: evaluate(unroll, initial_state, params, sequences[0]["abrupt"], lr,
                                          prefix).mean())
    flops = chunk_flops(params, lr, prefix)
    print(f"{method}: lr={lr}, {flops:.3e} FLOPs per symbol", flush=True)
    for s in range(args.seeds):
      unroll, initial_state, params, _ = models[s]
      for drift, seq in sequences[s].items():
        nll = evaluate(unroll, initial_state, params, seq, lr, prefix)
        curves.setdefault((drift, method), []).append(nll)
        records.append(Record(f"markov_{drift}", method, "online_nll", float(nll.mean()),
                              "nats_per_symbol", s, LENGTH))
        print(f"  seed {s} {drift}: online nll {nll.mean():.4f}", flush=True)
    records.append(Record("markov", method, "eval_flops_per_symbol", flops, "flops"))
  path = results_io.write_results("stream_dynamic_eval", records)
  fig, axes = plt.subplots(1, 2, figsize=(13, 4))
  for ax, drift in zip(axes, ("abrupt", "gradual")):
    for method in METHODS:
      mean = np.mean(curves[(drift, method)], axis=0)
      ax.plot(np.convolve(mean, np.ones(128) / 128, mode="valid"), label=method)
    ax.set(title=f"{drift} drift: online log-loss", xlabel="symbol", ylabel="nats (128-symbol MA)")
    ax.legend()
  fig.tight_layout()
  fig.savefig(path[:-len(".json")] + ".png", dpi=100)
  print(f"wrote {path} in {time.time() - t0:.0f}s")
  for (drift, method), values in sorted(curves.items()):
    means = [v.mean() for v in values]
    print(f"{drift:8s} {method:18s} online_nll {np.mean(means):.4f} ± {np.std(means):.4f}")


if __name__ == "__main__":
  main()
