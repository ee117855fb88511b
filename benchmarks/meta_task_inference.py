"""Meta-RL as task inference (METHODS §7): rl2, rl2_aux, task_inference and oracle compared on a
`meta:` task distribution (run by hand; long).

Trains one `task_inference` run per (variant, seed) with the command line, sequentially (never two
at once on a 2-core machine), then collects every run under the work directory into
`benchmarks/results/meta_task_inference.json` with a PNG of the curves. Finished runs are not
repeated; an interrupted run resumes from its checkpoint. Records, per variant (method) and seed:
  eval_return         the evaluator's mean return at each evaluation point (`env_steps`);
  steps_to_threshold  the first evaluation's env_steps with eval_return >= the threshold (runs that
                      never reach it get no record and are listed as such);
  belief_error        for variants with a belief, the learner's ‖μ − task‖ (or fraction of wrong
                      rows, for one-hot descriptors) averaged over its last 10 logged rows;
  belief_error_first_decision, belief_error_last_decision
                      the same error of the final checkpoint at the first and the last decision of
                      fresh episodes (`task_inference.belief_report`, whose per-decision curves,
                      averaged over seeds, are the PNG's lower row).
The threshold is `--threshold`, or else `--threshold-fraction` of the oracle's best mean
evaluation return on the task (over its seeds). The default fraction, 0.5, is one an agent that
must infer the task can reach: on `meta:point_goal` (3 trials) an agent that matches the oracle
in the two trials after the one in which it found the goal earns 2/3 of the oracle's return plus
what it earns while searching, so 0.8 (the default before 2026-12-08) would ask it to also earn,
in its search trial, 40% of what the oracle earns there knowing the goal. Humplik et al. 2019
report that task inference learns faster than the end-to-end recurrent baseline and approaches
the oracle.

    python benchmarks/meta_task_inference.py --task meta:point_goal --seeds 0 1 2 --env-steps 200000
    python benchmarks/meta_task_inference.py --collect-only
"""

import argparse
import csv
import glob
import json
import os
import subprocess
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # pylint: disable=wrong-import-position
import numpy as np  # pylint: disable=wrong-import-position

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchmarks import results_io  # pylint: disable=wrong-import-position
from priorax.agents.task_inference import belief_report  # pylint: disable=wrong-import-position
from priorax.agents.task_inference import config as config_lib  # pylint: disable=wrong-import-position

NAME = "meta_task_inference"


def run_dir_for(work_dir: str, task: str, variant: str, seed: int) -> str:
  return os.path.join(work_dir, f"{task.replace(':', '_')}_{variant}_seed{seed}")


def train(work_dir: str, task: str, variant: str, seed: int, env_steps: int, eval_every: int,
          eval_episodes: int, action_repeat: int, overrides) -> None:
  """One run of `env_steps` environment steps (env_steps / action_repeat agent steps)."""
  run_dir = run_dir_for(work_dir, task, variant, seed)
  steps = env_steps // action_repeat
  summary = os.path.join(run_dir, "summary.json")
  if os.path.exists(summary) and json.load(open(summary))["actor_steps"] >= steps:
    print(f"{task} {variant} seed {seed}: already done", flush=True)
    return
  command = [sys.executable, "-m", "priorax.launchers.cli", "train", "--agent", "task_inference",
             "--env", task, "--steps", str(steps), "--seed", str(seed), "--run-dir", run_dir,
             "--eval-every", str(eval_every // action_repeat), "--eval-episodes",
             str(eval_episodes), "--action-repeat", str(action_repeat), "--log-every-s", "10",
             "--set", f"variant={variant}"]
  for override in overrides:
    command += ["--set", override]
  print(" ".join(command), flush=True)
  subprocess.run(command, check=True)


def _rows(path: str) -> list:
  if not os.path.exists(path):
    return []
  with open(path, newline="") as f:
    return list(csv.DictReader(f))


def belief_by_decision(run_dir: str, num_episodes: int) -> list:
  """The final checkpoint's mean belief error at each decision of an episode (the run's
  `belief_report` CSV, written first if missing)."""
  path = os.path.join(run_dir, belief_report.CSV_FILE)
  if not os.path.exists(path):
    belief_report.write_belief_report(run_dir, num_episodes)
  return [float(r["belief_error"]) for r in _rows(path)]


def collect(work_dir: str, threshold, threshold_fraction: float, belief_episodes: int):
  """Returns (records, runs that never reached the threshold, {(task, variant, seed): the belief
  error at each decision})."""
  runs, by_decision = [], {}
  for config_path in sorted(glob.glob(os.path.join(work_dir, "*", "config.json"))):
    run = json.load(open(config_path))
    run_dir = os.path.dirname(config_path)
    if run["agent"] != "task_inference":
      continue
    if not os.path.exists(os.path.join(run_dir, "summary.json")):
      print(f"{run_dir}: unfinished, left out")
      continue
    evals = [(int(float(r["actor_steps"])) * int(run.get("action_repeat", 1)),
              float(r["episode_return"])) for r in _rows(os.path.join(run_dir, "logs",
                                                                      "evaluator.csv"))]
    runs.append((run["env"], run["agent_config"]["variant"], int(run["seed"]), evals,
                 _rows(os.path.join(run_dir, "logs", "learner.csv"))))
    if run["agent_config"]["variant"] != "rl2":
      by_decision[runs[-1][:3]] = belief_by_decision(run_dir, belief_episodes)
  records, missed = [], []
  for task in sorted({r[0] for r in runs}):
    task_threshold = threshold
    if task_threshold is None:
      oracle = [max(v for _, v in evals) for t, variant, _, evals, _ in runs
                if t == task and variant == "oracle" and evals]
      if not oracle:
        sys.exit(f"no oracle evaluations on {task}: give --threshold")
      task_threshold = threshold_fraction * float(np.mean(oracle))
    print(f"{task}: threshold {task_threshold:.2f}")
    for t, variant, seed, evals, learner_rows in runs:
      if t != task:
        continue
      for steps, value in evals:
        records.append(results_io.Record(task, variant, "eval_return", value, "return", seed,
                                         steps))
      reached = [steps for steps, value in evals if value >= task_threshold]
      if reached:
        records.append(results_io.Record(task, variant, "steps_to_threshold", reached[0],
                                         "env_steps", seed, reached[0]))
      else:
        missed.append((task, variant, seed))
      errors = [float(r["belief_error"]) for r in learner_rows if r.get("belief_error")]
      if errors and evals:
        records.append(results_io.Record(task, variant, "belief_error",
                                         float(np.mean(errors[-10:])), "task_units", seed,
                                         evals[-1][0]))
      errors = by_decision.get((task, variant, seed))
      if errors and evals:
        for metric, value in (("belief_error_first_decision", errors[0]),
                              ("belief_error_last_decision", errors[-1])):
          records.append(results_io.Record(task, variant, metric, value, "task_units", seed,
                                           evals[-1][0]))
  return records, missed, by_decision


def plot(records: list, by_decision: dict, path: str) -> None:
  """Upper row: evaluation return against environment steps; lower row: the final checkpoints'
  belief error against the decision within an episode (mean over seeds)."""
  curves = [r for r in records if r.metric == "eval_return"]
  tasks = sorted({r.task for r in curves})
  fig, axes = plt.subplots(2, len(tasks), figsize=(6 * len(tasks), 8), squeeze=False)
  for ax, task in zip(axes[1], tasks):
    for i, variant in enumerate(config_lib.VARIANTS):
      runs = [e for (t, v, _), e in by_decision.items() if (t, v) == (task, variant)]
      if runs:
        length = min(len(e) for e in runs)
        ax.plot(np.mean([e[:length] for e in runs], 0), color=f"C{i}",
                label=f"{variant} ({len(runs)} seeds)")
    ax.set_title(f"belief error within an episode on {task}")
    ax.set_xlabel("decision within the episode")
    ax.set_ylabel("belief error")
    ax.grid(alpha=0.3)
    ax.legend()
  for ax, task in zip(axes[0], tasks):
    for i, variant in enumerate(config_lib.VARIANTS):
      seeds = sorted({r.seed for r in curves if r.task == task and r.method == variant})
      for j, seed in enumerate(seeds):
        points = sorted((r.env_steps, r.value) for r in curves
                        if r.task == task and r.method == variant and r.seed == seed)
        ax.plot(*zip(*points), color=f"C{i}", marker=".", alpha=0.8,
                label=variant if j == 0 else None)
    ax.set_title(f"task_inference variants on {task}")
    ax.set_xlabel("environment steps")
    ax.set_ylabel("evaluation return")
    ax.grid(alpha=0.3)
    ax.legend()
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--task", default="meta:point_goal")
  parser.add_argument("--variants", nargs="+", default=list(config_lib.VARIANTS),
                      choices=config_lib.VARIANTS)
  parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
  parser.add_argument("--env-steps", type=int, default=200_000)
  parser.add_argument("--eval-every", type=int, default=10_000, help="in environment steps")
  parser.add_argument("--action-repeat", type=int, default=1,
                      help="environment steps per agent decision (4 lets a random policy reach "
                           "point_goal's goal in a fifth of its episodes, 1 in none)")
  parser.add_argument("--eval-episodes", type=int, default=10)
  parser.add_argument("--set", dest="overrides", action="append", default=[],
                      metavar="NAME=VALUE", help="agent config override for every run")
  parser.add_argument("--threshold", type=float, default=None)
  parser.add_argument("--threshold-fraction", type=float, default=0.5)
  parser.add_argument("--work-dir", default=os.path.join(results_io.RESULTS_DIR, f"{NAME}_work"))
  parser.add_argument("--name", default=NAME, help="results file name (a smoke test: another)")
  parser.add_argument("--belief-episodes", type=int, default=10,
                      help="episodes of each final checkpoint for the belief error by decision")
  parser.add_argument("--collect-only", action="store_true")
  args = parser.parse_args()
  if not args.collect_only:
    for seed in args.seeds:
      for variant in args.variants:
        train(args.work_dir, args.task, variant, seed, args.env_steps, args.eval_every,
              args.eval_episodes, args.action_repeat, args.overrides)
  records, missed, by_decision = collect(args.work_dir, args.threshold, args.threshold_fraction,
                                        args.belief_episodes)
  if not records:
    sys.exit("no finished runs under " + args.work_dir)
  path = results_io.write_results(args.name, records)
  plot(records, by_decision, path.replace(".json", ".png"))
  for task, variant in sorted({(r.task, r.method) for r in records}):
    steps = [r.value for r in records if (r.task, r.method, r.metric) ==
             (task, variant, "steps_to_threshold")]
    finals = [max((r.env_steps, r.value) for r in records if (r.task, r.method, r.metric, r.seed)
                  == (task, variant, "eval_return", seed))[1]
              for seed in {r.seed for r in records if (r.task, r.method) == (task, variant)
                           and r.metric == "eval_return"}]
    print(f"{task} {variant}: final eval return per seed {finals}; steps to threshold {steps}")
  for task, variant, seed in missed:
    print(f"{task} {variant} seed {seed}: never reached the threshold")
  print(f"wrote {path}")


if __name__ == "__main__":
  main()
