"""`priorax stream`: run learners over a task stream, write a run directory, a table and a plot.

  python -m priorax.stream.cli --learner independent,finetune_previous --stream tiny --run-dir runs/s

The run directory holds `config.json`, `results.csv` (one row per learner and task), `summary.json`
(stream metrics per learner) and `error_vs_compute.png`. `main(argv)` is what the `priorax` CLI's
`stream` sub-command calls.
"""

import argparse
import csv
import dataclasses
import json
import os
import sys
from typing import Optional, Sequence

from priorax.stream import datasets
from priorax.stream import protocol


def build_parser(parser: Optional[argparse.ArgumentParser] = None) -> argparse.ArgumentParser:
  parser = parser or argparse.ArgumentParser(prog="priorax stream", description=__doc__.split("\n")[0])
  parser.add_argument("--learner", default="independent,finetune_previous,finetune_pruned",
                      help=f"comma-separated, from {sorted(protocol.LEARNERS)}")
  parser.add_argument("--stream", default="tiny", choices=sorted(datasets.STREAMS))
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--max-steps", type=int, default=None, help="cap on SGD steps per trial")
  parser.add_argument("--run-dir", required=True)
  return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
  args = build_parser().parse_args(argv)
  learners = [name for name in args.learner.split(",") if name]
  unknown = [name for name in learners if name not in protocol.LEARNERS]
  if unknown or not learners:
    print(f"priorax stream: unknown learner(s) {unknown}; expected from {sorted(protocol.LEARNERS)}",
          file=sys.stderr)
    return 2
  overrides = {} if args.max_steps is None else {"max_steps": args.max_steps,
                                                  "min_steps": min(50, args.max_steps)}
  os.makedirs(args.run_dir, exist_ok=True)
  made = {name: protocol.make_learner(name, seed=args.seed, **overrides) for name in learners}
  with open(os.path.join(args.run_dir, "config.json"), "w") as f:
    json.dump({"stream": args.stream, "seed": args.seed,
               "tasks": datasets.STREAMS[args.stream],
               "learners": {n: dataclasses.asdict(l.config) for n, l in made.items()}}, f, indent=2)
  tasks = datasets.make_stream(args.stream, args.seed)
  rows, summary = [], {}
  for name, learner in made.items():
    print(f"== {name}", flush=True)
    results = protocol.run_stream(learner, tasks, log=lambda m: print("  " + m, flush=True))
    rows += [{"learner": name, **r._asdict()} for r in results]
    summary[name] = protocol.summarize(results)
  with open(os.path.join(args.run_dir, "results.csv"), "w", newline="") as f:
    writer = csv.DictWriter(f, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
  with open(os.path.join(args.run_dir, "summary.json"), "w") as f:
    json.dump(summary, f, indent=2)
  _plot(summary, os.path.join(args.run_dir, "error_vs_compute.png"))
  print(f"\n{'learner':20s} {'stream test error':>18s} {'FLOPs':>12s} {'wall s':>8s}")
  for name, s in summary.items():
    print(f"{name:20s} {s['stream_test_error']:18.4f} {s['stream_flops']:12.3e} "
          f"{s['stream_wall_time_s']:8.1f}")
  return 0


def _plot(summary, path):
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  fig, ax = plt.subplots(figsize=(6, 4))
  for name, s in summary.items():
    ax.scatter(s["stream_flops"], s["stream_test_error"], label=name)
  ax.set(xscale="log", xlabel="stream FLOPs", ylabel="stream average test error",
         title="error vs compute")
  ax.legend()
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)


if __name__ == "__main__":
  sys.exit(main())
