"""Scaling of `kl_svg0` with the number of Ray actors: collection alone and the full system.

Methods, each a run of the real launchers on `--task` with the default `kl_svg0` config (or
`--set` overrides), all on one local Ray instance started once with a CPU slot per actor:

- `collect_actors_{1,2,4}`: `priorax.launchers.ray` with the learner paused: `min_replay_size` is
  raised to `max_replay_size`, so the learner waits for its first batch for the whole run and Reverb
  never throttles inserts. Actors still pull parameters from the learner every
  `variable_update_period` steps (100, as `priorax launch`). Measures what acting and inserting
  into Reverb alone sustain.
- `train_actors_{1,2,4}`: the full system (learner, samples-per-insert rate limiter, evaluator).
- `local`: `priorax.launchers.local` (one process, acting and learning interleaved), same config.

Metrics (one record per method and metric; seed 0):
- `env_steps_per_s`: Ray: the mean over `logs/system.csv` rows of the summed per-actor steps/s
  measured between the driver's polls, over rows where every actor was running, the first such row
  (policy compilation) dropped. Local: the launcher's `train_env_steps_per_s` (whole episodes after
  warm-up).
- `learner_updates_per_s` (train and local): Ray: the mean of `system.csv`'s updates/s after the
  first row with updates; local: the learner log's steps over its `learner_walltime`.
- `samples_per_insert` (train): the ratio Reverb achieved over the run (target: batch size ×
  updates per step).
- `collect_speedup_vs_1_actor` (collect_actors_2/4): env_steps_per_s over collect_actors_1's; the
  target for 2 actors is ≥ 1.6.
The script prints where the bottleneck is (from these figures) and writes
`benchmarks/results/scaling_kl_svg0.json` and `.png`. Run it alone on a quiet machine:

    .venv/bin/python benchmarks/scaling_kl_svg0.py --collect-steps 20000 --train-steps 10000
"""

import argparse
import csv
import json
import math
import os
import shlex
import sys
import tempfile
from typing import Dict, List, Optional

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# Every Ray server of the local instance listens on 127.0.0.1 only (set before Ray is imported).
os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"

import matplotlib  # pylint: disable=wrong-import-position

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # pylint: disable=wrong-import-position
import numpy as np  # pylint: disable=wrong-import-position
import ray  # pylint: disable=wrong-import-position

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchmarks import results_io  # pylint: disable=wrong-import-position
from priorax import envs  # pylint: disable=wrong-import-position
from priorax.agents import registry  # pylint: disable=wrong-import-position
from priorax.launchers import cli  # pylint: disable=wrong-import-position
from priorax.launchers import local  # pylint: disable=wrong-import-position
from priorax.launchers import overrides  # pylint: disable=wrong-import-position
from priorax.launchers import ray as ray_launcher  # pylint: disable=wrong-import-position

NAME = "scaling_kl_svg0"
ACTOR_COUNTS = (1, 2, 4)
SPEEDUP_TARGET = 1.6
UNITS = {"env_steps_per_s": "env_steps/s", "learner_updates_per_s": "updates/s",
         "samples_per_insert": "ratio", "collect_speedup_vs_1_actor": "ratio"}


def _experiment(task: str, assignments: Dict[str, str], steps: int, run_dir: str,
                log_every_s: float) -> local.ExperimentConfig:
  entry = registry.get_agent("kl_svg0")
  assignments = {"variable_update_period": str(cli.LAUNCH_VARIABLE_UPDATE_PERIOD), **assignments}
  agent_config = overrides.apply_overrides(entry.config_class, assignments)
  return local.ExperimentConfig(
      agent="kl_svg0", builder=entry.builder_class(agent_config), environment_name=task,
      environment_factory=lambda seed: envs.make_environment(task, seed), run_dir=run_dir,
      seed=0, max_actor_steps=steps, eval_every=10 * steps, eval_episodes=1,
      checkpoint_every_s=3600.0, log_every_s=log_every_s)


def _rows(path: str) -> List[Dict[str, float]]:
  with open(path, newline="") as f:
    return [{k: float(v) if v not in ("", None) else math.nan for k, v in row.items()}
            for row in csv.DictReader(f)]


def _mean(values: List[float]) -> Optional[float]:
  values = [v for v in values if math.isfinite(v)]
  return float(np.mean(values)) if values else None


def measure_ray(config: local.ExperimentConfig, num_actors: int,
                learning: bool) -> Dict[str, float]:
  summary = ray_launcher.run_experiment(config, ray_launcher.RayConfig(num_actors=num_actors))
  rows = _rows(os.path.join(config.run_dir, "logs", f"{ray_launcher.SYSTEM_LOG}.csv"))
  actor_columns = [f"actor_{i}_steps_per_s" for i in range(num_actors)]
  running = [r for r in rows if all(r.get(c, math.nan) > 0 for c in actor_columns)]
  env_rate = _mean([r["env_steps_per_s"] for r in running[1:]] or
                   [r["env_steps_per_s"] for r in running])
  if env_rate is None:
    raise RuntimeError(f"no system row had all {num_actors} actors running; raise the steps")
  measured = {"env_steps_per_s": env_rate}
  if learning:
    learning_rows = [r for r in rows if r["learner_steps"] > 0]
    measured["learner_updates_per_s"] = _mean(
        [r["learner_updates_per_s"] for r in learning_rows[1:]]) or 0.0
    measured["samples_per_insert"] = summary["samples_per_insert"] or math.nan
  return measured


def measure_local(config: local.ExperimentConfig) -> Dict[str, float]:
  summary = local.run_experiment(config)
  rows = [r for r in _rows(os.path.join(config.run_dir, "logs", "learner.csv"))
          if r.get("learner_walltime", 0) > 0]
  updates = ((rows[-1]["learner_steps"] - rows[0]["learner_steps"]) /
             (rows[-1]["learner_walltime"] - rows[0]["learner_walltime"])
             if len(rows) >= 2 else math.nan)
  return {"env_steps_per_s": summary["train_env_steps_per_s"] or math.nan,
          "learner_updates_per_s": updates}


def bottleneck(measured: Dict[str, Dict[str, float]], updates_per_step: float) -> str:
  """Says, from the figures, what limits collection and what limits the full system."""
  collect = {n: measured[f"collect_actors_{n}"]["env_steps_per_s"] for n in ACTOR_COUNTS
             if f"collect_actors_{n}" in measured}
  lines = []
  if 1 in collect and 2 in collect:
    ratio = collect[2] / collect[1]
    lines.append(f"collection: 2 actors = {ratio:.2f}x one actor "
                 f"({'meets' if ratio >= SPEEDUP_TARGET else 'misses'} the {SPEEDUP_TARGET}x "
                 f"target); {os.cpu_count()} cores")
    if 4 in collect:
      lines.append(f"collection: 4 actors = {collect[4] / collect[1]:.2f}x one actor: beyond one "
                   f"actor per core the actors only share the cores")
  for n in ACTOR_COUNTS:
    train = measured.get(f"train_actors_{n}")
    if train is None:
      continue
    acting_ceiling = collect.get(n)
    # The rate limiter holds samples per insert at ρ = B·u: env steps/s = updates/s / u.
    limited = train["learner_updates_per_s"] / updates_per_step
    share = (f"{train['env_steps_per_s'] / acting_ceiling:.0%} of collection alone"
             if acting_ceiling else "")
    bound = ("learner-bound: actors run at the rate the learner's updates allow"
             if acting_ceiling and train["env_steps_per_s"] < 0.8 * acting_ceiling
             else "actor-bound: the actors run as fast as collection alone")
    lines.append(f"train_actors_{n}: {train['env_steps_per_s']:.0f} env steps/s ({share}), "
                 f"{train['learner_updates_per_s']:.0f} updates/s (steps/s allowed by the "
                 f"learner at ρ: {limited:.0f}) -> {bound}")
  return "\n".join(lines)


def plot(measured: Dict[str, Dict[str, float]], path: str, task: str) -> None:
  methods = list(measured)
  fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
  for ax, metric, title in ((axes[0], "env_steps_per_s", "environment steps/s"),
                            (axes[1], "learner_updates_per_s", "learner updates/s")):
    names = [m for m in methods if metric in measured[m]]
    values = [measured[m][metric] for m in names]
    colors = ["tab:blue" if m.startswith("collect") else
              "tab:orange" if m.startswith("train") else "tab:gray" for m in names]
    ax.bar(range(len(names)), values, color=colors)
    ax.set_xticks(range(len(names)))
    ax.set_xticklabels(names, rotation=30, ha="right")
    ax.set_title(f"{title} ({task})")
    ax.grid(axis="y", alpha=0.3)
  fig.suptitle(f"kl_svg0 scaling on {os.cpu_count()} cores: collection alone (blue), full "
               f"system (orange), local launcher (grey)")
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--task", default="dmc:cartpole-swingup")
  parser.add_argument("--collect-steps", type=int, default=20_000,
                      help="env steps of each collect_actors_N run")
  parser.add_argument("--train-steps", type=int, default=10_000,
                      help="env steps of each train_actors_N and local run")
  parser.add_argument("--methods", default=None,
                      help="comma-separated subset of the methods (default: all)")
  parser.add_argument("--log-every-s", type=float, default=2.0,
                      help="seconds between the driver's measurements")
  parser.add_argument("--set", dest="assignments", action="append", default=[],
                      metavar="NAME=VALUE", help="override a kl_svg0 config field")
  args = parser.parse_args()
  assignments = overrides.parse_assignments(args.assignments)
  methods = ([f"collect_actors_{n}" for n in ACTOR_COUNTS] +
             [f"train_actors_{n}" for n in ACTOR_COUNTS] + ["local"])
  if args.methods:
    unknown = sorted(set(args.methods.split(",")) - set(methods))
    if unknown:
      parser.error(f"unknown methods {unknown}; expected a subset of {methods}")
    methods = [m for m in methods if m in args.methods.split(",")]
  agent_config = overrides.apply_overrides(registry.get_agent("kl_svg0").config_class,
                                           assignments)
  print(f"load average before: {os.getloadavg()}", flush=True)
  ray_launcher.connect(ray_launcher.RayConfig(num_actors=max(ACTOR_COUNTS)))
  measured: Dict[str, Dict[str, float]] = {}
  try:
    with tempfile.TemporaryDirectory() as tmp:
      for method in methods:
        run_dir = os.path.join(tmp, method)
        if method.startswith("collect"):
          paused = {**assignments, "min_replay_size": str(agent_config.max_replay_size)}
          config = _experiment(args.task, paused, args.collect_steps, run_dir, args.log_every_s)
          measured[method] = measure_ray(config, int(method.rsplit("_", 1)[1]), learning=False)
        elif method.startswith("train"):
          config = _experiment(args.task, assignments, args.train_steps, run_dir,
                               args.log_every_s)
          measured[method] = measure_ray(config, int(method.rsplit("_", 1)[1]), learning=True)
        else:
          config = _experiment(args.task, assignments, args.train_steps, run_dir,
                               args.log_every_s)
          measured[method] = measure_local(config)
        print(f"{method}: {json.dumps(measured[method])}", flush=True)
  finally:
    ray.shutdown()
  base = measured.get("collect_actors_1", {}).get("env_steps_per_s")
  for n in ACTOR_COUNTS[1:]:
    if base and f"collect_actors_{n}" in measured:
      measured[f"collect_actors_{n}"]["collect_speedup_vs_1_actor"] = (
          measured[f"collect_actors_{n}"]["env_steps_per_s"] / base)
  records = [results_io.Record(task=args.task, method=method, metric=metric, value=value,
                               unit=UNITS[metric], seed=0)
             for method, figures in measured.items() for metric, value in figures.items()
             if value is not None and math.isfinite(value)]
  path = results_io.write_results(NAME, records,
                                  command=" ".join(shlex.quote(a) for a in sys.argv))
  plot(measured, path.replace(".json", ".png"), args.task)
  print(bottleneck(measured, agent_config.updates_per_step))
  print(f"wrote {path}")


if __name__ == "__main__":
  main()
