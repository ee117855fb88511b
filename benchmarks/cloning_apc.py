"""Distilling trained experts: student return against the environment transitions it cost.

For each task, seed, method and budget of K expert rollouts, `priorax.launchers.distill` collects
the data, trains a student and evaluates it; runs already finished are not repeated and an
interrupted one resumes. Methods: bc, dagger, apc, lfpc, naive_abc, each also as `<method>_compressed`
(a student with at most 1/4 of the expert's parameters) and as `<method>_privileged` (a student that
does not see the observation keys named by `--privileged-keys`, which the expert sees: METHODS §5's
privileged expert).

Protocol (Galashov, Merel & Heess, NeurIPS 2022, §5): Gaussian experts trained by priorax
(`benchmarks/learning_kl_svg0.py`, one per task and seed: cartpole seeds 0–2; a walker task's
seed 0 expert for every seed when only that one exists), data collected with expert action noise
0.2, students evaluated with action noise 0.2 over 50 episodes, budgets of 1…50 expert rollouts.
The expert's own return is measured under the same noise.

Records, per task / method / seed: `return_fraction` (student return ÷ expert return) and
`eval_return` against `env_steps` (environment transitions of the data: agent steps × action
repeat; DAgger's include its student rollouts), `expert_return`, and `interactions_to_90pct`, the
fewest env_steps among the budgets whose student reached 90% of the expert's return (or, if none did,
`interactions_to_90pct_not_reached` holding the largest budget tried, a lower bound). Budgets are
tried in increasing order and a method stops at the first that reaches 90% (`--all-budgets` trains
them all).

    # The experts (once; on 2 cores ~20 min for cartpole's three seeds, ~18 min for a walker task;
    # walker-run's expert is unreliable at this budget: seed 0 reached 285 once, 162 another time):
    python benchmarks/learning_kl_svg0.py --task dmc:cartpole-swingup --seeds 0 1 2 --env-steps 100000
    python benchmarks/learning_kl_svg0.py --task dmc:walker-walk --seeds 0 --env-steps 200000
    # The distillation benchmark (the default methods: the five and their compressed students):
    python benchmarks/cloning_apc.py
    # The walker-walk run of the README: the paper's smallest torso (one layer of 256, 1/7.5 of the
    # expert) as the compressed student, plus students that do not see the walker's height:
    python benchmarks/cloning_apc.py --tasks dmc:walker-walk --compressed-size 256 \
        --privileged-keys height --methods apc bc dagger lfpc naive_abc apc_compressed \
        bc_compressed apc_privileged bc_privileged
"""

import argparse
import functools
import glob
import json
import os
import sys
from typing import Callable, Iterator, Optional, Tuple

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # pylint: disable=wrong-import-position
import jax  # pylint: disable=wrong-import-position
import numpy as np  # pylint: disable=wrong-import-position

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# pylint: disable=wrong-import-position
from benchmarks import learning_kl_svg0
from benchmarks import results_io
from priorax import envs
from priorax import specs
from priorax.agents import cloning
from priorax.agents.cloning import acting
from priorax.launchers import distill
# pylint: enable=wrong-import-position

NAME = "cloning_apc"
WORK_DIR = os.path.join(results_io.RESULTS_DIR, f"{NAME}_work")
METHODS = ("bc", "dagger", "apc", "lfpc", "naive_abc")
COMPRESSED = "_compressed"
PRIVILEGED = "_privileged"
VARIANTS = ("", COMPRESSED, PRIVILEGED)
THRESHOLD = 0.9
EXPERT_SEED_OFFSET = 7_000_001  # Seeds the expert's evaluation environment apart from students'.


def expert_run_dir(experts_dir: str, task: str, seed: int) -> str:
  """The expert of (task, seed), or that of seed 0 when this seed has none."""
  repeat = learning_kl_svg0.default_action_repeat(task)
  for candidate_seed in (seed, 0):
    name = os.path.basename(learning_kl_svg0.run_dir_for(task, candidate_seed, repeat))
    path = os.path.join(experts_dir, name)
    if glob.glob(os.path.join(path, "checkpoints", "ckpt_*.pkl")):
      return path
  sys.exit(f"no expert for {task} under {experts_dir}; train it with benchmarks/learning_kl_svg0.py")


def split_method(method: str) -> Tuple[str, str]:
  """'apc_compressed' → ('apc', '_compressed'); 'bc' → ('bc', ''). Unknown names are a ValueError."""
  for variant in (COMPRESSED, PRIVILEGED):
    if method.endswith(variant) and method.removesuffix(variant) in METHODS:
      return method.removesuffix(variant), variant
  if method in METHODS:
    return method, ""
  raise ValueError(f"unknown method {method!r}; expected one of {list(METHODS)}, each optionally "
                   f"suffixed with {COMPRESSED} or {PRIVILEGED}")


def student_observation_keys(environment_spec, privileged_keys) -> Tuple[str, ...]:
  """The observation keys of a privileged student: all of the environment's but `privileged_keys`."""
  keys = tuple(environment_spec.observations)
  missing = sorted(set(privileged_keys) - set(keys))
  if missing:
    raise ValueError(f"--privileged-keys {missing} are not observations of this task; it has "
                     f"{list(keys)}")
  student_keys = tuple(k for k in keys if k not in privileged_keys)
  if not student_keys:
    raise ValueError(f"--privileged-keys {list(privileged_keys)} leave the student no observation")
  return student_keys


def num_params(params) -> int:
  return int(sum(np.size(x) for x in jax.tree_util.tree_leaves(params)))


def expert_return(expert, task: str, seed: int, action_repeat: int, episodes: int,
                  noise: float, work_dir: str) -> float:
  """The expert's mean return with action noise `noise` (cached in the work directory)."""
  path = os.path.join(work_dir, f"{task.replace(':', '_')}_seed{seed}_expert.json")
  if os.path.exists(path):
    return json.load(open(path))["return"]
  environment = envs.make_environment(task, seed + EXPERT_SEED_OFFSET,
                                      action_repeat=action_repeat)
  policy = acting.make_mixture_policy(None, expert, beta=1.0, noise=noise)
  returns = distill.evaluate_policy(environment, policy, (), jax.random.PRNGKey(seed), episodes)
  os.makedirs(work_dir, exist_ok=True)
  with open(path, "w") as f:
    json.dump({"return": float(np.mean(returns)), "std": float(np.std(returns)),
               "episodes": episodes, "expert": expert.name}, f)
  return float(np.mean(returns))


def run_student(expert, task: str, seed: int, method: str, budget: int, args) -> Optional[dict]:
  """The student's summary: trained now, or read back; None if `--report-only` finds none."""
  base_method, variant = split_method(method)
  sizes = args.compressed_size if variant == COMPRESSED else args.student_size
  run_dir = os.path.join(args.work_dir, f"{task.replace(':', '_')}_seed{seed}", f"{method}_k{budget}")
  summary_path = os.path.join(run_dir, "summary.json")
  if os.path.exists(summary_path):
    return json.load(open(summary_path))
  if args.report_only:
    return None
  action_repeat = int(expert.run.get("action_repeat", 1))
  make_environment = lambda s: envs.make_environment(task, s, action_repeat=action_repeat)
  observation_keys = None
  if variant == PRIVILEGED:
    observation_keys = student_observation_keys(specs.make_environment_spec(make_environment(seed)),
                                                args.privileged_keys)
  config = cloning.CloningConfig(method=base_method, policy_hidden_sizes=tuple(sizes),
                                 policy_observation_keys=observation_keys,
                                 num_updates=args.updates, batch_size=args.batch_size,
                                 num_perturbations=args.num_perturbations,
                                 perturbation_scale=args.perturbation_scale)
  print(f"== {task} seed {seed} {method} K={budget}", flush=True)
  return distill.run_distillation(distill.DistillConfig(
      builder=cloning.CloningBuilder(config), expert=expert, environment_name=task,
      environment_factory=make_environment,
      run_dir=run_dir, rollouts=budget, seed=seed, action_repeat=action_repeat,
      eval_every=args.updates, eval_episodes=args.eval_episodes, eval_noise=args.noise,
      log_every_s=30.0))


def budget_sweep(run: Callable[[int], Optional[dict]], budgets, reference: float,
                 all_budgets: bool) -> Iterator[Tuple[dict, float]]:
  """(summary, return fraction) of each budget's student, in increasing budget order.

  Budgets whose `run` gives None (not trained, under `--report-only`) are skipped. Unless
  `all_budgets`, the sweep stops at the first student reaching THRESHOLD: interactions_to_90pct is
  then known, and larger budgets would only extend the curve.
  """
  for budget in sorted(budgets):
    summary = run(budget)
    if summary is None:
      continue
    fraction = summary["final_eval_return"] / reference
    yield summary, fraction
    if fraction >= THRESHOLD and not all_budgets:
      return


def interactions_to_threshold(points):
  """(env_steps, fraction) pairs → (fewest env_steps reaching THRESHOLD, reached?)."""
  points = sorted(points)
  for env_steps, fraction in points:
    if fraction >= THRESHOLD:
      return env_steps, True
  return points[-1][0], False


def plot(records, path: str) -> None:
  curves = [r for r in records if r.metric == "return_fraction"]
  tasks = sorted({r.task for r in curves})
  fig, axes = plt.subplots(1, len(tasks), figsize=(6 * len(tasks), 4.5), squeeze=False)
  colours = dict(zip(METHODS, plt.rcParams["axes.prop_cycle"].by_key()["color"]))
  for ax, task in zip(axes[0], tasks):
    for method in sorted({r.method for r in curves if r.task == task}):
      by_seed = {}
      for r in curves:
        if r.task == task and r.method == method:
          by_seed.setdefault(r.seed, {})[r.env_steps] = r.value
      base_method, variant = split_method(method)
      style = dict(color=colours[base_method],
                   linestyle={"": "-", COMPRESSED: "--", PRIVILEGED: "-."}[variant])
      # A seed stops at the first budget reaching the threshold, so the mean is drawn only where
      # every seed has a student (a mean of the seeds still training would be biased low); each
      # seed's own curve is drawn faintly.
      for seed_curve in by_seed.values():
        ax.plot(*zip(*sorted(seed_curve.items())), alpha=0.25, linewidth=0.8, **style)
      common = sorted(set.intersection(*(set(c) for c in by_seed.values())))
      ax.plot(common, [np.mean([c[s] for c in by_seed.values()]) for s in common], marker="o",
              label=f"{method} (mean of {len(by_seed)} seeds)", **style)
    ax.axhline(THRESHOLD, color="grey", linewidth=0.8, linestyle=":")
    ax.set_xscale("log")
    ax.set_xlabel("environment transitions of data (expert rollouts; DAgger: all)")
    ax.set_ylabel("student return / expert return (noise 0.2)")
    ax.set_title(f"distillation on {task}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--tasks", nargs="+", default=["dmc:cartpole-swingup", "dmc:walker-walk"])
  parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
  parser.add_argument("--budgets", type=int, nargs="+", default=[1, 2, 5, 10, 20, 50],
                      help="expert rollouts K")
  parser.add_argument("--methods", nargs="+",
                      default=list(METHODS) + [m + COMPRESSED for m in METHODS])
  parser.add_argument("--privileged-keys", nargs="+", default=[], metavar="KEY",
                      help="observation keys the expert sees and the <method>_privileged students "
                      "do not (e.g. height on walker-run, target_pos on manipulator-insert_peg)")
  parser.add_argument("--all-budgets", action="store_true",
                      help="train every budget; by default a method stops at the first budget "
                      "whose student reaches 90%% of the expert")
  parser.add_argument("--report-only", action="store_true",
                      help="train nothing: report the students the work directory holds (runs "
                      "split over several invocations are gathered into one results file)")
  parser.add_argument("--updates", type=int, default=5_000, help="learner steps per student")
  parser.add_argument("--batch-size", type=int, default=64,
                      help="groups per learner step (a group: a real state and its M synthetic ones)")
  parser.add_argument("--student-size", type=int, nargs="+", default=[256, 256, 256])
  parser.add_argument("--compressed-size", type=int, nargs="+", default=[64, 64])
  parser.add_argument("--num-perturbations", type=int, default=10)
  # σ_s = 0.3 of the normalised observation, from a pilot on cartpole-swingup seed 0 (README).
  parser.add_argument("--perturbation-scale", type=float, default=0.3)
  parser.add_argument("--noise", type=float, default=0.2,
                      help="action noise of the expert when collecting and of students when "
                      "evaluated")
  parser.add_argument("--eval-episodes", type=int, default=50)
  parser.add_argument("--experts-dir", default=learning_kl_svg0.WORK_DIR)
  parser.add_argument("--work-dir", default=WORK_DIR)
  args = parser.parse_args()
  for method in args.methods:
    try:
      _, variant = split_method(method)
    except ValueError as error:
      parser.error(str(error))
    if variant == PRIVILEGED and not args.privileged_keys:
      parser.error(f"method {method} needs --privileged-keys: the observation keys only the expert "
                   "sees")

  records = []
  for task in args.tasks:
    for seed in args.seeds:
      expert = cloning.load_expert(expert_run_dir(args.experts_dir, task, seed))
      expert_size = num_params(expert.params)
      action_repeat = int(expert.run.get("action_repeat", 1))
      reference = expert_return(expert, task, seed, action_repeat, args.eval_episodes, args.noise,
                                args.work_dir)
      records.append(results_io.Record(task, "expert", "expert_return", reference, "return",
                                       seed=seed))
      print(f"{task} seed {seed}: expert {expert.name} ({expert_size:,} params) returns "
            f"{reference:.1f} with action noise {args.noise}", flush=True)
      for method in args.methods:
        points = []
        run = functools.partial(run_student, expert, task, seed, method, args=args)
        for summary, fraction in budget_sweep(run, args.budgets, reference, args.all_budgets):
          if split_method(method)[1] == COMPRESSED and summary["student_params"] * 4 > expert_size:
            sys.exit(f"--compressed-size {args.compressed_size}: {summary['student_params']:,} "
                     f"params is more than 1/4 of the expert's {expert_size:,}")
          points.append((summary["env_steps"], fraction))
          records.append(results_io.Record(task, method, "return_fraction", fraction, "fraction",
                                           seed=seed, env_steps=summary["env_steps"]))
          records.append(results_io.Record(task, method, "eval_return",
                                           summary["final_eval_return"], "return", seed=seed,
                                           env_steps=summary["env_steps"]))
        if not points:
          print(f"{task} seed {seed} {method}: no student trained yet", flush=True)
          continue
        steps, reached = interactions_to_threshold(points)
        metric = "interactions_to_90pct" if reached else "interactions_to_90pct_not_reached"
        records.append(results_io.Record(task, method, metric, steps, "env_steps", seed=seed))
        print(f"{task} seed {seed} {method}: return fraction by env steps "
              f"{[(s, round(f, 3)) for s, f in points]}; {metric} = {steps:,}", flush=True)

  path = results_io.write_results(NAME, records)
  plot(records, path.replace(".json", ".png"))
  for task in args.tasks:
    for method in args.methods:
      reached = [r.value for r in records if r.task == task and r.method == method
                 and r.metric == "interactions_to_90pct"]
      median = f"{np.median(reached):,.0f}" if reached else "-"
      print(f"{task} {method}: 90% of the expert reached by {len(reached)}/{len(args.seeds)} "
            f"seeds; median interactions {median}")
  print(f"wrote {path}")


if __name__ == "__main__":
  main()
