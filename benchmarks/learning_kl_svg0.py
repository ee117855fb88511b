"""Learning curves of `kl_svg0` on dm_control tasks (run by hand; long).

Trains one run per (task, seed) with the `priorax train` command line, sequentially (never two at
once on a 2-core machine), then collects every run found under the work directory into
`benchmarks/results/learning_kl_svg0.json` (records `eval_return`, per seed and evaluation point,
with `env_steps`) and a PNG of the curves. Runs already finished are not repeated, and an
interrupted run resumes from its checkpoint.

Protocol: the state-based dm_control benchmark of PlaNet/CURL/DrQ (Hafner et al. 2019; Laskin et
al. 2020; Kostrikov et al. 2020), with action repeat 8 on cartpole and 2 on walker, and budgets in
*environment* steps (`env_steps` = agent steps × action repeat). One gradient update per agent
step. Runs with another action repeat are recorded as method `kl_svg0_action_repeat_<k>`.

    python benchmarks/learning_kl_svg0.py --task dmc:cartpole-swingup --seeds 0 1 2 --env-steps 100000
    python benchmarks/learning_kl_svg0.py --task dmc:walker-walk --seeds 0 --env-steps 500000
    python benchmarks/learning_kl_svg0.py --collect-only
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

NAME = "learning_kl_svg0"
WORK_DIR = os.path.join(results_io.RESULTS_DIR, f"{NAME}_work")
PRIORAX = os.path.join(os.path.dirname(sys.executable), "priorax")


# The benchmark's action repeat per domain (PlaNet's settings for these tasks).
ACTION_REPEAT = {"cartpole": 8, "walker": 2}


def default_action_repeat(task: str) -> int:
  return ACTION_REPEAT.get(task.split(":")[1].split("-")[0], 1)


def run_dir_for(task: str, seed: int, action_repeat: int) -> str:
  suffix = "" if action_repeat == 1 else f"_repeat{action_repeat}"
  return os.path.join(WORK_DIR, f"{task.replace(':', '_')}{suffix}_seed{seed}")


def train(task: str, seed: int, env_steps: int, action_repeat: int, eval_every: int,
          eval_episodes: int) -> None:
  run_dir = run_dir_for(task, seed, action_repeat)
  steps = env_steps // action_repeat
  summary = os.path.join(run_dir, "summary.json")
  if os.path.exists(summary) and json.load(open(summary))["actor_steps"] >= steps:
    print(f"{task} seed {seed}: already done", flush=True)
    return
  command = [PRIORAX, "train", "--agent", "kl_svg0", "--env", task, "--steps", str(steps),
             "--seed", str(seed), "--run-dir", run_dir, "--action-repeat", str(action_repeat),
             "--eval-every", str(max(1, eval_every // action_repeat)),
             "--eval-episodes", str(eval_episodes), "--log-every-s", "30"]
  print(" ".join(command), flush=True)
  subprocess.run(command, check=True)


def collect() -> list:
  records = []
  # Unfinished runs count too: their evaluations so far are recorded with their env_steps.
  for config_path in sorted(glob.glob(os.path.join(WORK_DIR, "*", "config.json"))):
    run_dir = os.path.dirname(config_path)
    run = json.load(open(config_path))
    evaluator_csv = os.path.join(run_dir, "logs", "evaluator.csv")
    if not os.path.exists(evaluator_csv):
      continue
    repeat = int(run.get("action_repeat", 1))
    method = ("kl_svg0" if repeat == default_action_repeat(run["env"])
              else f"kl_svg0_action_repeat_{repeat}")
    with open(evaluator_csv, newline="") as f:
      for row in csv.DictReader(f):
        records.append(results_io.Record(
            task=run["env"], method=method, metric="eval_return",
            value=float(row["episode_return"]), unit="return", seed=int(run["seed"]),
            env_steps=int(float(row["actor_steps"])) * repeat))
    summary_path = os.path.join(run_dir, "summary.json")
    summary = json.load(open(summary_path)) if os.path.exists(summary_path) else {}
    if summary.get("train_env_steps_per_s"):
      records.append(results_io.Record(
          task=run["env"], method=method, metric="train_agent_steps_per_s",
          value=summary["train_env_steps_per_s"], unit="agent_steps/s", seed=int(run["seed"]),
          env_steps=summary["actor_steps"] * repeat))
  return records


def plot(records: list, path: str) -> None:
  curves = [r for r in records if r.metric == "eval_return"]
  tasks = sorted({r.task for r in curves})
  fig, axes = plt.subplots(1, len(tasks), figsize=(5 * len(tasks), 4), squeeze=False)
  for ax, task in zip(axes[0], tasks):
    for method, seed in sorted({(r.method, r.seed) for r in curves if r.task == task}):
      points = sorted((r.env_steps, r.value) for r in curves
                      if r.task == task and r.seed == seed and r.method == method)
      ax.plot(*zip(*points), marker=".", label=f"{method} seed {seed}",
              linestyle="-" if method == "kl_svg0" else ":")
    ax.set_title(f"kl_svg0 on {task}")
    ax.set_xlabel("environment steps")
    ax.set_ylabel("evaluation return")
    ax.grid(alpha=0.3)
    ax.legend()
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--task", default="dmc:cartpole-swingup")
  parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
  parser.add_argument("--env-steps", type=int, default=100_000,
                      help="environment steps per run (agent steps × action repeat)")
  parser.add_argument("--action-repeat", type=int, default=None,
                      help="default: the benchmark's setting for the task's domain")
  parser.add_argument("--eval-every", type=int, default=10_000)
  parser.add_argument("--eval-episodes", type=int, default=5)
  parser.add_argument("--collect-only", action="store_true")
  args = parser.parse_args()
  if not args.collect_only:
    repeat = args.action_repeat or default_action_repeat(args.task)
    for seed in args.seeds:
      train(args.task, seed, args.env_steps, repeat, args.eval_every, args.eval_episodes)
  records = collect()
  if not records:
    sys.exit("no finished runs under " + WORK_DIR)
  path = results_io.write_results(NAME, records)
  plot(records, path.replace(".json", ".png"))
  for task, method in sorted({(r.task, r.method) for r in records}):
    finals = {}
    for r in records:
      if r.task == task and r.method == method and r.metric == "eval_return":
        if r.seed not in finals or r.env_steps > finals[r.seed][0]:
          finals[r.seed] = (r.env_steps, r.value)
    values = [v for _, v in finals.values()]
    print(f"{task} {method}: final (env steps, eval return) per seed "
          f"{dict(sorted(finals.items()))}; median {np.median(values):.1f}")
  print(f"wrote {path}")


if __name__ == "__main__":
  main()
