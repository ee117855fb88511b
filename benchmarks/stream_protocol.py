"""NEVIS-style stream benchmark: test error vs compute for the transfer baselines (issue 3).

Stream `offline_small` (priorax.stream.datasets.STREAMS): glyphs 10,000 → shapes 1,000 → digits
1,000 → textures 100 → glyphs 300 → shapes 100 training examples (dev 200, test 500 each), all
generated offline. Learners: `independent` (from scratch on each task), `finetune_previous`
(fine-tune the last task's backbone), `finetune_knn` (dynamic kNN: fine-tune the stored backbone of
any earlier task whose features score best under a kNN probe on the new task's train/dev splits;
the probes' compute counts), `finetune_pruned` (the previous backbone after removing the 50 %
lowest-norm units of each hidden layer, Caccia et al. 2023). Each task runs a 2-point learning-rate search whose
compute all counts. Records `stream_test_error` and `stream_flops` (XLA cost analysis) per seed, and
per-task `test_error`; writes benchmarks/results/stream_protocol.json and .png.

  .venv/bin/python -m benchmarks.stream_protocol [--seeds 3] [--stream offline_small]
"""

import argparse
import time
from typing import Dict, List

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from benchmarks import results_io
from priorax.stream import datasets
from priorax.stream import protocol

Record = results_io.Record


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--seeds", type=int, default=3)
  parser.add_argument("--stream", default="offline_small", choices=sorted(datasets.STREAMS))
  parser.add_argument("--learners", default=",".join(protocol.LEARNERS))
  args = parser.parse_args()
  learners = args.learners.split(",")
  records: List[Record] = []
  runs: Dict[str, List[List[protocol.TaskResult]]] = {name: [] for name in learners}
  t0 = time.time()
  for seed in range(args.seeds):
    tasks = datasets.make_stream(args.stream, seed)
    for name in learners:
      print(f"== seed {seed} learner {name}", flush=True)
      results = protocol.run_stream(protocol.make_learner(name, seed=seed), tasks,
                                    log=lambda m: print("  " + m, flush=True))
      runs[name].append(results)
      summary = protocol.summarize(results)
      records += [
          Record(args.stream, name, "stream_test_error", summary["stream_test_error"], "fraction", seed),
          Record(args.stream, name, "stream_flops", summary["stream_flops"], "flops", seed),
          Record(args.stream, name, "stream_wall_time", summary["stream_wall_time_s"], "s", seed),
      ]
      for i, r in enumerate(results):
        records += [Record(f"{args.stream}/{i}:{r.task}", name, "test_error", r.test_error, "fraction",
                           seed),
                    Record(f"{args.stream}/{i}:{r.task}", name, "task_flops", r.flops, "flops", seed)]
      print(f"  stream test error {summary['stream_test_error']:.4f}, "
            f"{summary['stream_flops']:.3e} FLOPs", flush=True)
  path = results_io.write_results("stream_protocol", records)
  _plot(runs, args.stream, path[:-len(".json")] + ".png")
  print(f"wrote {path} in {time.time() - t0:.0f}s")
  for name in learners:
    err = [protocol.summarize(r)["stream_test_error"] for r in runs[name]]
    flops = [protocol.summarize(r)["stream_flops"] for r in runs[name]]
    print(f"{name:18s} stream_test_error {np.mean(err):.4f} ± {np.std(err):.4f}   "
          f"stream_flops {np.mean(flops):.3e}")


def _plot(runs, stream, path):
  fig, axes = plt.subplots(1, 2, figsize=(13, 4.5))
  for name, per_seed in runs.items():
    errors = np.array([[r.test_error for r in res] for res in per_seed])
    flops = np.array([[r.flops for r in res] for res in per_seed])
    # Cumulative compute vs running average error as the stream unfolds.
    cum_flops = np.cumsum(flops, axis=1).mean(0)
    run_err = (np.cumsum(errors, axis=1) / np.arange(1, errors.shape[1] + 1)).mean(0)
    axes[0].plot(cum_flops, run_err, marker="o", label=name)
    axes[1].errorbar(flops.sum(1).mean(), errors.mean(1).mean(), yerr=errors.mean(1).std(),
                     xerr=flops.sum(1).std(), marker="o", capsize=3, label=name)
  axes[0].set(xscale="log", xlabel="cumulative training + dev FLOPs", ylabel="average test error so far",
              title=f"{stream}: error vs compute along the stream")
  axes[1].ticklabel_format(axis="x", style="sci", scilimits=(0, 0))
  axes[1].set(xlabel="stream FLOPs", ylabel="stream average test error",
              title="end of stream (mean ± sd over seeds)")
  for ax in axes:
    ax.legend()
  fig.tight_layout()
  fig.savefig(path, dpi=100)


if __name__ == "__main__":
  main()
