"""NPMP on an expert library: one-shot tracking of held-out skills, and reuse on new tasks
(run by hand; long).

Merel et al. 2019, "Neural probabilistic motor primitives for humanoid control"
(https://arxiv.org/abs/1811.11711): a latent-variable policy distilled from many experts tracks
behaviours it never saw from a short window of their reference, and its frozen decoder, driven by a
new high-level policy, learns new tasks faster than a policy learned from scratch. LFPC
(linear-feedback policy cloning) needs fewer expert transitions for the same tracking quality.

Protocol, per seed (every run is a `priorax` subprocess, one at a time), on an expert library
built by `priorax library` (e.g. `priorax library --body walker --out libraries/walker`):
1. For each number n of reference episodes per skill (`--episodes-per-skill`), a sub-library of
   each training skill's first n episodes (symlinks, under the work dir) is distilled by
   `priorax npmp` — methods `npmp` (plain) and `npmp_lfpc` (`--set lfpc=true`) — on every skill
   except `--held-out`.
2. `tracking_return_fraction`: each held-out skill's first `--track-episodes` references are
   tracked one-shot (`priorax npmp-track`: encoder on the reference, decoder in closed loop from
   the reference's start state); the record is the mean return fraction R_tracked / R_reference
   over those episodes. Its `env_steps` field holds the number of expert transitions (agent steps
   of the training skills' references) the NPMP was distilled from: the x axis of this figure.
3. `steps_to_threshold` on each new task (`--tasks`, default two `goto` targets the library never
   saw): `npmp_reuse` trains `kl_svg0` whose action is the latent of the frozen decoder of the
   largest `npmp` run (`priorax train --low-level`), `scratch` trains `kl_svg0` on the raw actions
   at the same control step (the library's action repeat). The figure is the environment steps of
   the first evaluation whose mean return reaches `--threshold`; a run that never reaches it is
   recorded at its budget (censored) with `reached_threshold` = 0.

Runs live under `benchmarks/results/npmp_walker_work/` (git-ignored); finished runs are not
repeated and interrupted ones resume, so re-running the command continues.

    python benchmarks/npmp_walker.py --library libraries/walker --held-out getup --seeds 0 1 2
    python benchmarks/npmp_walker.py --library libraries/walker --held-out getup --collect-only
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

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from benchmarks import results_io  # pylint: disable=wrong-import-position
from priorax.experts import library as library_lib  # pylint: disable=wrong-import-position

NAME = "npmp_walker"
WORK_DIR = os.path.join(results_io.RESULTS_DIR, f"{NAME}_work")
# Distillation methods: name -> `priorax npmp` flags.
DISTILL = {"npmp": [], "npmp_lfpc": ["--set", "lfpc=true"]}
REUSE = ("npmp_reuse", "scratch")


def _subprocess(command: list) -> None:
  print(" ".join(command), flush=True)
  subprocess.run(command, check=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": os.pathsep.join(
      filter(None, [ROOT, os.environ.get("PYTHONPATH")]))})


def _cli(*args) -> list:
  return [sys.executable, "-m", "priorax.launchers.cli", *args]


def sub_library(library: library_lib.Library, skills: list, episodes: int, out: str) -> str:
  """A library of `skills` with each one's first `episodes` references (symlinked)."""
  entries = []
  for skill in (library.skill(name) for name in skills):
    paths = sorted(glob.glob(os.path.join(library.rollouts_dir(skill), "episode_*.npz")))
    if len(paths) < episodes:
      raise SystemExit(f"skill {skill.name!r} has {len(paths)} reference episodes, fewer than "
                       f"{episodes}")
    rollouts = os.path.join(out, skill.name, "rollouts")
    os.makedirs(rollouts, exist_ok=True)
    transitions = 0
    for path in paths[:episodes]:
      link = os.path.join(rollouts, os.path.basename(path))
      if not os.path.lexists(link):
        os.symlink(os.path.abspath(path), link)
      with np.load(path) as data:
        transitions += len(data["action"])
    expert = os.path.join(out, skill.name, "run")
    if not os.path.lexists(expert):
      os.symlink(os.path.abspath(library.expert_dir(skill)), expert)
    entries.append(library_lib.Skill(
        name=skill.name, environment=skill.environment, action_repeat=skill.action_repeat,
        expert=os.path.join(skill.name, "run"), rollouts=os.path.join(skill.name, "rollouts"),
        episodes=episodes, transitions=transitions, mean_return=skill.mean_return,
        train_env_steps=skill.train_env_steps, train_cpu_seconds=skill.train_cpu_seconds))
  library_lib.write_library(out, library.body, library.observation_keys, entries)
  return out


def _done(run_dir: str, key: str, target: int) -> bool:
  path = os.path.join(run_dir, "summary.json")
  return os.path.exists(path) and json.load(open(path))[key] >= target


def distill_and_track(args, library, seed: int) -> None:
  training = [s.name for s in library.skills if s.name not in args.held_out]
  for episodes in args.episodes_per_skill:
    sub = sub_library(library, training, episodes,
                      os.path.join(args.work_dir, f"library_{episodes}ep"))
    for method in args.distill_methods:
      run_dir = os.path.join(args.work_dir, f"{method}_{episodes}ep_seed{seed}")
      if not _done(run_dir, "learner_steps", args.npmp_steps):
        _subprocess(_cli("npmp", "--library", sub, "--run-dir", run_dir, "--seed", str(seed),
                         "--steps", str(args.npmp_steps), "--log-every-s", "30",
                         *DISTILL[method], *args.npmp_extra))
      for skill in args.held_out:
        for episode in range(args.track_episodes):
          if not os.path.exists(os.path.join(run_dir, "tracking", f"{skill}_{episode}.json")):
            _subprocess(_cli("npmp-track", "--run-dir", run_dir, "--library", library.path,
                             "--skill", skill, "--episode", str(episode)))


def reuse(args, library, seed: int) -> None:
  action_repeat = library.skills[0].action_repeat
  low_level = os.path.join(args.work_dir, f"npmp_{max(args.episodes_per_skill)}ep_seed{seed}")
  agent_steps = args.reuse_env_steps // action_repeat
  for task in args.tasks:
    for method in args.reuse_methods:
      run_dir = os.path.join(args.work_dir, f"{method}_{task.replace(':', '_')}_seed{seed}")
      if _done(run_dir, "actor_steps", agent_steps):
        continue
      flags = (["--low-level", low_level, "--action-repeat", "1"] if method == "npmp_reuse"
               else ["--action-repeat", str(action_repeat)])
      _subprocess(_cli("train", "--agent", "kl_svg0", "--env", task, "--seed", str(seed),
                       "--steps", str(agent_steps), "--run-dir", run_dir,
                       "--eval-every", str(max(1, args.eval_every // action_repeat)),
                       "--eval-episodes", str(args.eval_episodes), "--log-every-s", "30",
                       *flags, *args.train_extra))


def collect(args, library) -> list:
  records = []
  action_repeat = library.skills[0].action_repeat
  for summary_path in sorted(glob.glob(os.path.join(args.work_dir, "npmp*_seed*",
                                                    "summary.json"))):
    run_dir = os.path.dirname(summary_path)
    summary = json.load(open(summary_path))
    method = os.path.basename(run_dir).rsplit("_", 2)[0]
    if method not in DISTILL or "transitions" not in summary:
      continue
    by_skill = {}
    for path in glob.glob(os.path.join(run_dir, "tracking", "*.json")):
      result = json.load(open(path))
      if result["held_out"]:
        by_skill.setdefault(result["skill"], []).append(result["return_fraction"])
    for skill, fractions in sorted(by_skill.items()):
      records.append(results_io.Record(
          task=f"{library.body}:{skill}", method=method, metric="tracking_return_fraction",
          value=float(np.mean(fractions)), unit="fraction", seed=summary["seed"],
          env_steps=summary["transitions"]))
  for config_path in sorted(glob.glob(os.path.join(args.work_dir, "*_seed*", "config.json"))):
    run_dir = os.path.dirname(config_path)
    method = next((m for m in REUSE if os.path.basename(run_dir).startswith(m + "_")), None)
    summary_path = os.path.join(run_dir, "summary.json")
    if method is None or not os.path.exists(summary_path):
      continue  # Unfinished: a censored value would depend on where it stopped.
    run = json.load(open(config_path))
    # Environment steps per agent step: scratch's action repeat; for reuse, the decoder's action
    # repeat times the decoder steps per latent (the run's --action-repeat).
    repeat = run.get("action_repeat", 1) * (action_repeat if method == "npmp_reuse" else 1)
    budget = json.load(open(summary_path))["actor_steps"] * repeat
    with open(os.path.join(run_dir, "logs", "evaluator.csv"), newline="") as f:
      curve = [(int(float(r["actor_steps"])) * repeat, float(r["episode_return"]))
               for r in csv.DictReader(f)]
    reached = [steps for steps, value in curve if value >= args.threshold]
    common = dict(task=run["env"], method=method, seed=run["seed"], env_steps=budget)
    records.append(results_io.Record(metric="steps_to_threshold", unit="env_steps",
                                     value=float(reached[0] if reached else budget), **common))
    records.append(results_io.Record(metric="reached_threshold", unit="bool",
                                     value=float(bool(reached)), **common))
    records += [results_io.Record(task=run["env"], method=method, seed=run["seed"],
                                  metric="eval_return", unit="return", value=value,
                                  env_steps=steps) for steps, value in curve]
  return records


def plot(records: list, threshold: float, path: str) -> None:
  fig, (tracking, bars) = plt.subplots(1, 2, figsize=(11, 4))
  for i, method in enumerate(DISTILL):
    points = [(r.env_steps, r.value) for r in records
              if r.method == method and r.metric == "tracking_return_fraction"]
    if not points:
      continue
    xs = sorted({x for x, _ in points})
    means = [np.mean([v for x, v in points if x == x0]) for x0 in xs]
    tracking.scatter(*zip(*points), color=f"C{i}", alpha=0.4)
    tracking.plot(xs, means, color=f"C{i}", marker="o", label=method)
  tracking.set_xscale("log")
  tracking.set_xlabel("expert transitions distilled")
  tracking.set_ylabel("return fraction on held-out skills")
  tracking.set_title("one-shot tracking (dots: seeds × skills)")
  tracking.legend()
  tasks = sorted({r.task for r in records if r.metric == "steps_to_threshold"})
  width = 0.8 / len(REUSE)
  for j, method in enumerate(REUSE):
    for i, task in enumerate(tasks):
      steps = [r.value for r in records if r.method == method and r.task == task
               and r.metric == "steps_to_threshold"]
      if steps:
        x = i + (j - (len(REUSE) - 1) / 2) * width
        bars.bar(x, np.mean(steps), width, color=f"C{j + 2}", alpha=0.5,
                 label=method if i == 0 else None)
        bars.scatter([x] * len(steps), steps, color=f"C{j + 2}", zorder=3)
  bars.set_xticks(range(len(tasks)), tasks, fontsize=8)
  bars.set_ylabel(f"environment steps to return {threshold:g}")
  bars.set_title("new tasks: lower is better; unreached = budget")
  if tasks:
    bars.legend()
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--library", required=True, help="an expert library (priorax library)")
  parser.add_argument("--held-out", nargs="+", required=True, metavar="SKILL",
                      help="library skills never distilled, only tracked")
  parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
  parser.add_argument("--episodes-per-skill", type=int, nargs="+", default=[1, 3, 10],
                      help="reference episodes per training skill (the x axis of tracking)")
  parser.add_argument("--distill-methods", nargs="+", default=list(DISTILL),
                      choices=list(DISTILL))
  parser.add_argument("--npmp-steps", type=int, default=20_000, help="learner steps per NPMP")
  parser.add_argument("--track-episodes", type=int, default=3,
                      help="reference episodes tracked per held-out skill")
  parser.add_argument("--tasks", nargs="+", default=["skill:walker-goto_6", "skill:walker-goto_-3"],
                      help="new tasks for reuse")
  parser.add_argument("--reuse-methods", nargs="+", default=list(REUSE), choices=list(REUSE))
  parser.add_argument("--reuse-env-steps", type=int, default=100_000)
  parser.add_argument("--eval-every", type=int, default=5_000, help="environment steps")
  parser.add_argument("--eval-episodes", type=int, default=3)
  parser.add_argument("--threshold", type=float, default=250.0,
                      help="evaluation return that counts as solving a new task")
  parser.add_argument("--work-dir", default=WORK_DIR)
  parser.add_argument("--npmp-set", dest="npmp_extra", action="append", default=[],
                      metavar="NAME=VALUE", type=lambda text: f"--set={text}",
                      help="NPMPConfig override for every distillation")
  parser.add_argument("--train-set", dest="train_extra", action="append", default=[],
                      metavar="NAME=VALUE", type=lambda text: f"--set={text}",
                      help="kl_svg0 override for every reuse and scratch run")
  parser.add_argument("--collect-only", action="store_true")
  args = parser.parse_args()
  library = library_lib.load_library(args.library)
  for skill in args.held_out:
    library.skill(skill)  # Fails now on an unknown skill.
  os.makedirs(args.work_dir, exist_ok=True)
  if not args.collect_only:
    for seed in args.seeds:
      distill_and_track(args, library, seed)
      reuse(args, library, seed)
  records = collect(args, library)
  if not records:
    sys.exit("no finished runs under " + args.work_dir)
  path = results_io.write_results(NAME, records)
  plot(records, args.threshold, path.replace(".json", ".png"))
  for method in DISTILL:
    for transitions in sorted({r.env_steps for r in records if r.method == method}):
      values = [r.value for r in records if r.method == method and r.env_steps == transitions
                and r.metric == "tracking_return_fraction"]
      print(f"{method} @ {transitions:,} expert transitions: tracking return fraction "
            f"{np.mean(values):.3f} (n={len(values)})")
  for task in sorted({r.task for r in records if r.metric == "steps_to_threshold"}):
    means = {m: np.mean([r.value for r in records if r.method == m and r.task == task
                         and r.metric == "steps_to_threshold"]) for m in REUSE
             if any(r.method == m and r.task == task for r in records)}
    ratio = (f"; scratch/reuse {means['scratch'] / means['npmp_reuse']:.2f}x"
             if len(means) == 2 else "")
    print(f"{task}: steps to {args.threshold:g} " +
          ", ".join(f"{m} {v:,.0f}" for m, v in means.items()) + ratio)
  print(f"wrote {path}")


if __name__ == "__main__":
  main()
