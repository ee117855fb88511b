"""Transfer of a learned default policy to a held-out task (run by hand; long).

Galashov et al. 2019, "Information asymmetry in KL-regularized RL" (https://arxiv.org/abs/1905.01240):
a default policy π0 trained on a family of tasks while denied the task information learns the
behaviour the tasks share, and regularising towards it speeds up a new task of the family; a π0
that sees everything collapses onto the family's policy instead.

Two families (`--family`, `priorax/envs/families.py`):
  reacher_targets  a target on an arc, one of four per episode; held out: a fifth target on the
                   arc. π0 sees the arm (`position,velocity`), not `to_target`. Threshold 700.
  cheetah_speeds   run forward at 2, 4 or 6 m/s, one per episode; held out: the suite's
                   cheetah-run (10 m/s). π0 sees the body (`position,velocity`), not
                   `target_speed`. Threshold 400 (an average of 4 m/s on the held-out task).

Protocol, per seed (every run is a `priorax train` subprocess, one at a time):
1. Pre-train `kl_svg0` with a learned prior on the family, once with π0 seeing the body only (the
   asymmetric prior), once with π0 seeing everything, and once with the hierarchical prior (π0_H
   and the shared low level π_L seeing the body only).
2. On the held-out task train a fresh policy and critic with, as methods:
     scratch            the uniform prior (SAC),
     prior_asymmetric   the asymmetric π0 of step 1, frozen (`--prior-from ... --freeze-prior`),
     prior_full_obs     the full-observation π0 of step 1, frozen,
     prior_hierarchical the hierarchical run's π0_H and low level π_L, both frozen; a new high
                        level π_H is learned (Tirumala et al. 2019, reuse of the skills).
   With `--fine-tune-prior` the transferred π0 (π0_H) keeps learning by distillation from the new
   policy, starting from the pre-trained one; π_L stays frozen.
3. Record `steps_to_threshold`: the environment steps (agent steps × action repeat) of the first
   evaluation whose mean return over `--eval-episodes` deterministic episodes reaches
   `--threshold` (default: the family's). A run that never reaches it is recorded at its budget (a
   censored value, so the ratio to scratch is then a lower bound) with `reached_threshold` = 0.

Runs live under `benchmarks/results/transfer_kl_svg0_work/` (git-ignored); a finished run is not
repeated and an interrupted one resumes from its checkpoint, so re-running the command continues.

    python benchmarks/transfer_kl_svg0.py --seeds 0 1 2
    python benchmarks/transfer_kl_svg0.py --methods scratch prior_hierarchical \
        --results-name transfer_kl_svg0_hierarchical
    python benchmarks/transfer_kl_svg0.py --family cheetah_speeds --work-dir DIR \
        --results-name transfer_kl_svg0_cheetah
    python benchmarks/transfer_kl_svg0.py --family cheetah_speeds --work-dir DIR2 \
        --methods prior_asymmetric --fine-tune-prior   # DIR2 holding links to DIR's pre-training
    python benchmarks/transfer_kl_svg0.py --collect-only
"""

import argparse
import csv
import dataclasses
import glob
import json
import os
import subprocess
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # pylint: disable=wrong-import-position
import numpy as np  # pylint: disable=wrong-import-position

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from benchmarks import results_io  # pylint: disable=wrong-import-position
from priorax.envs import families  # pylint: disable=wrong-import-position

NAME = "transfer_kl_svg0"
WORK_DIR = os.path.join(results_io.RESULTS_DIR, f"{NAME}_work")
ACTION_REPEAT = 2  # 1000-step episodes become 500 decisions.


@dataclasses.dataclass(frozen=True)
class TransferFamily:
  """A task family of `priorax.envs.families` as this benchmark uses it."""
  name: str
  body_keys: str  # What the asymmetric prior sees (comma-separated observation keys).
  threshold: float  # The default return that counts as solving the held-out task.

  @property
  def all_keys(self) -> str:
    """Every observation key, the family's task keys too: what the full-observation prior sees."""
    keys = self.body_keys.split(",") + list(families.FAMILIES[self.name].task_keys)
    return ",".join(sorted(keys))

  @property
  def env(self) -> str:
    return f"family:{self.name}"

  @property
  def holdout(self) -> str:
    return f"family:{self.name}-holdout"

  def pretrain_flags(self) -> dict:
    """Pre-training runs: name -> `priorax train` flags."""
    return {
        "pretrain_asymmetric": ["--set", "prior=learned",
                                "--set", f"prior_observation_keys={self.body_keys}"],
        "pretrain_full_obs": ["--set", "prior=learned",
                              "--set", f"prior_observation_keys={self.all_keys}"],
        "pretrain_hierarchical": ["--set", "prior=hierarchical",
                                  "--set", f"prior_observation_keys={self.body_keys}",
                                  "--set", f"low_level_observation_keys={self.body_keys}"],
    }


FAMILIES = {
    "reacher_targets": TransferFamily("reacher_targets", "position,velocity", threshold=700.0),
    "cheetah_speeds": TransferFamily("cheetah_speeds", "position,velocity", threshold=400.0),
}

# Transfer methods: name -> (the pre-training run it needs or None, its `priorax train` flags
# given that run's directory).
# `--freeze-prior` is added to every method with a pre-training run unless `--fine-tune-prior`.
METHODS = {
    "scratch": (None, lambda source: []),
    "prior_asymmetric": ("pretrain_asymmetric", lambda source: ["--prior-from", source]),
    "prior_full_obs": ("pretrain_full_obs", lambda source: ["--prior-from", source]),
    "prior_hierarchical": ("pretrain_hierarchical",
                           lambda source: ["--prior-from", source,
                                           "--set", "freeze_low_level=true"]),
}


def train_run(run_dir: str, env: str, seed: int, env_steps: int, flags: list, eval_every: int,
              eval_episodes: int, agent: str = "kl_svg0") -> None:
  """Trains (or resumes) one `agent` run; returns at once if it already finished."""
  steps = env_steps // ACTION_REPEAT
  summary = os.path.join(run_dir, "summary.json")
  if os.path.exists(summary) and json.load(open(summary))["actor_steps"] >= steps:
    print(f"{os.path.basename(run_dir)}: already done", flush=True)
    return
  command = [sys.executable, "-m", "priorax.launchers.cli", "train", "--agent", agent,
             "--env", env, "--steps", str(steps), "--seed", str(seed), "--run-dir", run_dir,
             "--action-repeat", str(ACTION_REPEAT),
             "--eval-every", str(max(1, eval_every // ACTION_REPEAT)),
             "--eval-episodes", str(eval_episodes), "--log-every-s", "30", *flags]
  print(" ".join(command), flush=True)
  subprocess.run(command, check=True, cwd=ROOT,
                 env={**os.environ, "PYTHONPATH": os.pathsep.join(
                     filter(None, [ROOT, os.environ.get("PYTHONPATH")]))})


def run_seed(seed: int, args) -> None:
  family = FAMILIES[args.family]
  for name, flags in family.pretrain_flags().items():
    if any(source == name for source, _ in (METHODS[m] for m in args.methods)):
      train_run(os.path.join(args.work_dir, f"{name}_seed{seed}"), family.env, seed,
                args.pretrain_env_steps, flags + args.extra, args.eval_every, args.eval_episodes)
  for method in args.methods:
    source, flags = METHODS[method]
    source_dir = os.path.join(args.work_dir, f"{source}_seed{seed}") if source else None
    freeze = ["--freeze-prior"] if source and not args.fine_tune_prior else []
    train_run(os.path.join(args.work_dir, f"{method}_seed{seed}"), family.holdout, seed,
              args.transfer_env_steps, flags(source_dir) + freeze + args.extra, args.eval_every,
              args.eval_episodes)


def evaluations(run_dir: str) -> list:
  """[(env steps, mean evaluation return)] of a run, in order."""
  path = os.path.join(run_dir, "logs", "evaluator.csv")
  if not os.path.exists(path):
    return []
  with open(path, newline="") as f:
    return [(int(float(r["actor_steps"])) * ACTION_REPEAT, float(r["episode_return"]))
            for r in csv.DictReader(f)]


def collect(work_dir: str, task: str, threshold: float, methods=tuple(METHODS)) -> list:
  """Records of every run of `methods` under `work_dir` (runs on `task`) that has finished."""
  records = []
  for config_path in sorted(glob.glob(os.path.join(work_dir, "*_seed*", "config.json"))):
    run_dir = os.path.dirname(config_path)
    method = os.path.basename(run_dir).rsplit("_seed", 1)[0]
    if method not in methods:
      continue
    seed = int(json.load(open(config_path))["seed"])
    curve = evaluations(run_dir)
    summary_path = os.path.join(run_dir, "summary.json")
    if not curve or not os.path.exists(summary_path):
      continue  # Unfinished: a censored value would depend on where it stopped.
    budget = json.load(open(summary_path))["actor_steps"] * ACTION_REPEAT
    reached = [steps for steps, value in curve if value >= threshold]
    records.append(results_io.Record(
        task=task, method=method, metric="steps_to_threshold",
        value=float(reached[0] if reached else budget), unit="env_steps", seed=seed,
        env_steps=budget))
    records.append(results_io.Record(
        task=task, method=method, metric="reached_threshold", value=float(bool(reached)),
        unit="bool", seed=seed, env_steps=budget))
    records += [results_io.Record(task=task, method=method, metric="eval_return", value=value,
                                  unit="return", seed=seed, env_steps=steps)
                for steps, value in curve]
  return records


def plot(records: list, threshold: float, path: str, methods=tuple(METHODS)) -> None:
  methods = [m for m in methods if any(r.method == m for r in records)]
  fig, (curves, bars) = plt.subplots(1, 2, figsize=(11, 4))
  for i, method in enumerate(methods):
    color = f"C{i}"
    for seed in sorted({r.seed for r in records if r.method == method}):
      points = sorted((r.env_steps, r.value) for r in records
                      if r.method == method and r.seed == seed and r.metric == "eval_return")
      curves.plot(*zip(*points), color=color, alpha=0.7,
                  label=method if seed == min(r.seed for r in records if r.method == method)
                  else None)
    steps = [r.value for r in records if r.method == method and r.metric == "steps_to_threshold"]
    bars.bar(i, np.mean(steps), color=color, alpha=0.5)
    bars.scatter([i] * len(steps), steps, color=color, zorder=3)
  curves.axhline(threshold, color="k", linestyle=":", label=f"threshold {threshold:g}")
  curves.set_xlabel("environment steps on the held-out task")
  curves.set_ylabel("evaluation return")
  curves.set_title(records[0].task)
  curves.legend()
  bars.set_xticks(range(len(methods)), methods)
  bars.set_ylabel("environment steps to threshold (dots: seeds)")
  bars.set_title("lower is better; unreached = budget")
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)


def print_ratios(records: list, threshold: float, methods=tuple(METHODS)) -> None:
  """Prints each method's steps to `threshold` per seed, their mean and scratch's mean over it."""
  scratch = [r.value for r in records if r.method == "scratch" and r.metric == "steps_to_threshold"]
  for method in methods:
    steps = {r.seed: r.value for r in records
             if r.method == method and r.metric == "steps_to_threshold"}
    if steps:
      ratio = (f"; scratch/this {np.mean(scratch) / np.mean(list(steps.values())):.2f}x"
               if scratch else "")
      print(f"{method}: steps to {threshold:g} per seed {dict(sorted(steps.items()))}, "
            f"mean {np.mean(list(steps.values())):.0f}{ratio}")


def make_parser(description: str, methods, *, transfer_env_steps: int, eval_every: int,
                work_dir: str, set_help: str) -> argparse.ArgumentParser:
  """The flags every pre-train-then-transfer benchmark shares (this one and IWPLA's)."""
  parser = argparse.ArgumentParser(description=description)
  parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
  parser.add_argument("--methods", nargs="+", default=list(methods), choices=list(methods))
  parser.add_argument("--pretrain-env-steps", type=int, default=100_000)
  parser.add_argument("--transfer-env-steps", type=int, default=transfer_env_steps)
  parser.add_argument("--eval-every", type=int, default=eval_every, help="environment steps")
  parser.add_argument("--eval-episodes", type=int, default=5)
  parser.add_argument("--family", default="reacher_targets", choices=list(FAMILIES),
                      help="the task family to pre-train on and its held-out task to transfer to")
  parser.add_argument("--threshold", type=float, default=None,
                      help="evaluation return that counts as solved (of at most 1000; default: "
                      + ", ".join(f"{f.threshold:g} for {f.name}" for f in FAMILIES.values()) + ")")
  parser.add_argument("--work-dir", default=work_dir)
  parser.add_argument("--set", dest="extra", action="append", default=[], metavar="NAME=VALUE",
                      type=lambda text: f"--set={text}", help=set_help)
  parser.add_argument("--collect-only", action="store_true")
  parser.add_argument("--results-name", default=None,
                      help="write benchmarks/results/<name>.json and .png (default: the "
                      "benchmark's own name), e.g. for a run of some of the methods")
  return parser


def run_and_report(name: str, args, run_seed, methods) -> None:
  """Runs (or resumes) every seed unless --collect-only, then writes the JSON and PNG of every
  finished run under the work directory and prints the ratios to scratch."""
  if not args.collect_only:
    for seed in args.seeds:
      run_seed(seed, args)
  family = FAMILIES[args.family]
  threshold = family.threshold if args.threshold is None else args.threshold
  records = collect(args.work_dir, family.holdout, threshold, methods=tuple(methods))
  if not records:
    sys.exit("no finished transfer runs under " + args.work_dir)
  path = results_io.write_results(args.results_name or name, records)
  plot(records, threshold, path.replace(".json", ".png"), methods=tuple(methods))
  print_ratios(records, threshold, methods=tuple(methods))
  print(f"wrote {path}")


def make_transfer_parser() -> argparse.ArgumentParser:
  """This benchmark's flags: the shared ones and `--fine-tune-prior`."""
  parser = make_parser(__doc__.split("\n")[0], METHODS, transfer_env_steps=60_000,
                       eval_every=4_000, work_dir=WORK_DIR,
                       set_help="agent config override for every run (e.g. for a smoke test)")
  parser.add_argument("--fine-tune-prior", action="store_true",
                      help="keep training the transferred π0 on the held-out task (distilled from "
                      "the new policy) instead of freezing it")
  return parser


def main():
  run_and_report(NAME, make_transfer_parser().parse_args(), run_seed, METHODS)


if __name__ == "__main__":
  main()
