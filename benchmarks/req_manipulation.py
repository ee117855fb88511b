"""REQ with and without a suboptimal expert on manipulation tasks (run by hand; long).

Jeong et al. 2020, "Learning dexterous manipulation from suboptimal experts"
(https://arxiv.org/abs/2010.08587; METHODS §4): REQ whose exploration is intertwined with a
waypoint expert's actions and whose prior also regresses onto the expert's advantageous actions
learns faster than REQ without the expert and than an off-policy baseline, and ends above both
the expert and behaviour cloning of it.

Methods, per task and seed (each training run a `priorax train` subprocess, one at a time):
  req_expert     `req --expert NAME`: intertwined exploration (`p_intertwine`, `p_rho`), the
                 expert-regression term, `--expert-episodes` pure expert rollouts in the replay;
  req_no_expert  `req` alone, the same settings;
  kl_svg0        `kl_svg0` (the uniform prior: SAC-like), networks of the same size;
  bc_expert      a `bc` student of `--bc-rollouts` expert rollouts (`priorax.launchers.distill`;
                 the expert's action, which every observation carries, is its label; the student
                 reads every other key), evaluated without noise: a horizontal line;
  expert         the waypoint controller itself, `--expert-eval-episodes` episodes: a line.
All act with action repeat 2 (`transfer_kl_svg0.ACTION_REPEAT`), the expert too.

Records (`benchmarks/results/req_manipulation.json`): `eval_return` of the evaluation policy every
`--eval-every` environment steps (mean of `--eval-episodes` episodes); at the end of each run
`success_rate` and `final_return` over `--success-episodes` episodes of `priorax evaluate`'s
deterministic policy (success: the mean reward of the last repeated step is ≥ 0.5, the object at
its goal when the episode ends, as in `benchmarks/req_experts.py`); `eval_return_auc`, the mean of
a run's evaluation returns (higher = learns faster over the budget).

Runs live under `benchmarks/results/req_manipulation_work/` (git-ignored); a run whose directory
has a summary (and `success.json`) is not repeated, an interrupted one resumes.

    python benchmarks/req_manipulation.py --seeds 0 1 2 --env-steps 20000
    python benchmarks/req_manipulation.py --collect-only
"""

import argparse
import json
import os
import sys
import time
from typing import Dict, List, Tuple

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # pylint: disable=wrong-import-position
import numpy as np  # pylint: disable=wrong-import-position

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from benchmarks import req_experts  # pylint: disable=wrong-import-position
from benchmarks import results_io  # pylint: disable=wrong-import-position
from benchmarks import transfer_kl_svg0  # pylint: disable=wrong-import-position

NAME = "req_manipulation"
WORK_DIR = os.path.join(results_io.RESULTS_DIR, f"{NAME}_work")
ACTION_REPEAT = transfer_kl_svg0.ACTION_REPEAT
SUCCESS_FILE = "success.json"
# The two tasks whose experts help most (benchmarks/req_experts.py: lift_brick succeeds in 94 %,
# bring_ball and stack_bricks in 7 %, bring_ball with the higher return).
DEFAULT_EXPERTS = ("lift_brick", "bring_ball")
LEARNED = ("req_expert", "req_no_expert", "kl_svg0")
METHODS = LEARNED + ("bc_expert", "expert")
# Every learning run's networks and batch: smaller than the paper's 256×3 and M = 50, for a
# shared 2-core machine; `--set` appends overrides after these (for req and kl_svg0 alike only
# fields both have: use `--set-req`/`--set-kl` otherwise).
REQ_SETTINGS = ["prior_hidden_sizes=128,128", "critic_hidden_sizes=128,128", "batch_size=128",
                "num_samples=20", "target_update_period=100"]
KL_SVG0_SETTINGS = ["policy_hidden_sizes=128,128", "critic_hidden_sizes=128,128",
                    "batch_size=128"]


def environment_of(expert: str) -> str:
  """The environment an expert of `priorax.agents.req.experts` is made for."""
  from priorax.agents.req import experts  # pylint: disable=g-import-not-at-top
  if expert not in experts.EXPERTS:
    raise ValueError(f"unknown expert {expert!r}; expected one of {sorted(experts.EXPERTS)}")
  return experts.EXPERTS[expert][1][0]


def _flags(settings: List[str]) -> List[str]:
  return [f"--set={s}" for s in settings]


def learning_flags(method: str, expert: str, args) -> Tuple[str, List[str]]:
  """(agent, `priorax train` flags) of a learning method."""
  if method == "kl_svg0":
    return "kl_svg0", _flags(KL_SVG0_SETTINGS + args.set_kl)
  flags = _flags(REQ_SETTINGS + args.set_req)
  if method == "req_expert":
    flags = ["--expert", expert, f"--set=expert_episodes={args.expert_episodes}"] + flags
  return "req", flags


def measure_success(run_dir: str, episodes: int, seed: int) -> Dict[str, float]:
  """Evaluates a finished run's deterministic policy; writes and returns `success.json`."""
  from priorax.launchers import evaluation  # pylint: disable=g-import-not-at-top
  path = os.path.join(run_dir, SUCCESS_FILE)
  if os.path.exists(path):
    return json.load(open(path))
  result = evaluation.evaluate_run(run_dir, episodes=episodes, seed=seed)
  return _write_success(path, result["returns"], result["last_rewards"])


def _write_success(path: str, returns: List[float], last_rewards: List[float]) -> Dict:
  success = [float(req_experts.succeeded(r, ACTION_REPEAT)) for r in last_rewards]
  doc = {"episodes": len(returns), "returns": list(map(float, returns)),
         "last_rewards": list(map(float, last_rewards)), "success_rate": float(np.mean(success)),
         "final_return": float(np.mean(returns))}
  with open(path, "w") as f:
    json.dump(doc, f, indent=2)
  return doc


def run_expert(run_dir: str, expert: str, seed: int, episodes: int) -> None:
  """The controller itself, `episodes` episodes from environment seed 10000·(seed + 1)."""
  path = os.path.join(run_dir, SUCCESS_FILE)
  if os.path.exists(path):
    return
  os.makedirs(run_dir, exist_ok=True)
  results = req_experts.run_expert(expert, episodes, action_repeat=ACTION_REPEAT,
                                   first_seed=10_000 * (seed + 1))
  _write_success(path, results["return"], results["last_reward"])
  with open(os.path.join(run_dir, "config.json"), "w") as f:
    json.dump({"seed": seed, "expert": expert, "action_repeat": ACTION_REPEAT}, f)


def observed_expert(action_size: int):
  """A cloning `Expert` whose mean is the action the observation carries (`expert_action`).

  The waypoint controllers keep state and read the simulator, so they are no pure function of the
  observation; `experts.ExpertActionWrapper` puts their action in every observation instead, and
  this reads it back (pre-tanh: atanh of the action clipped to |a| ≤ 0.999).
  """
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  from priorax.agents.cloning import experts as cloning_experts  # pylint: disable=g-import-not-at-top
  from priorax.agents.req import config as req_config  # pylint: disable=g-import-not-at-top
  from priorax.networks import distributions  # pylint: disable=g-import-not-at-top
  key = req_config.EXPERT_ACTION_KEY

  def apply(params, observation):
    del params
    mean = jnp.arctanh(jnp.clip(observation[key], -0.999, 0.999))
    return distributions.GaussianParams(mean, jnp.full_like(mean, 0.1))

  return cloning_experts.Expert(name="observed:expert_action", params={}, apply=apply,
                                action_size=action_size, observation_keys=(key,))


def run_bc(run_dir: str, expert: str, seed: int, args) -> None:
  """Trains (or resumes) a `bc` student on `args.bc_rollouts` noise-free expert rollouts."""
  from priorax import envs  # pylint: disable=g-import-not-at-top
  from priorax import specs  # pylint: disable=g-import-not-at-top
  from priorax.agents import cloning  # pylint: disable=g-import-not-at-top
  from priorax.agents.req import experts  # pylint: disable=g-import-not-at-top
  from priorax.launchers import distill  # pylint: disable=g-import-not-at-top
  if os.path.exists(os.path.join(run_dir, "summary.json")):
    return
  env_name = environment_of(expert)

  def make_environment(env_seed):
    return experts.ExpertActionWrapper(
        envs.make_environment(env_name, env_seed, action_repeat=ACTION_REPEAT),
        experts.make_expert(expert, env_name))

  spec = specs.make_environment_spec(make_environment(seed))
  keys = tuple(sorted(k for k in spec.observations if k != experts.EXPERT_ACTION_KEY))
  config = cloning.CloningConfig(method="bc", policy_hidden_sizes=(128, 128),
                                 policy_observation_keys=keys, expert_noise=0.0,
                                 num_updates=args.bc_updates)
  distill.run_distillation(distill.DistillConfig(
      builder=cloning.CloningBuilder(config), expert=observed_expert(int(spec.actions.shape[-1])),
      environment_name=env_name, environment_factory=make_environment, run_dir=run_dir,
      rollouts=args.bc_rollouts, seed=seed, action_repeat=ACTION_REPEAT,
      eval_every=args.bc_updates, eval_episodes=args.eval_episodes, eval_noise=0.0,
      log_every_s=30.0))


def run_seed(expert: str, seed: int, args, progress) -> None:
  """Every method of `args.methods` on `expert`'s task for one seed."""
  env_name = environment_of(expert)
  for method in args.methods:
    run_dir = os.path.join(args.work_dir, f"{expert}_{method}_seed{seed}")
    progress(f"{expert} {method} seed {seed}")
    if method == "expert":
      run_expert(run_dir, expert, seed, args.expert_eval_episodes)
      continue
    if method == "bc_expert":
      run_bc(run_dir, expert, seed, args)
    else:
      agent, flags = learning_flags(method, expert, args)
      transfer_kl_svg0.train_run(run_dir, env_name, seed, args.env_steps, flags, args.eval_every,
                                 args.eval_episodes, agent=agent)
    measure_success(run_dir, args.success_episodes, seed=20_000 + seed)


def collect(work_dir: str, experts_: List[str], methods=METHODS) -> List[results_io.Record]:
  """Records of every finished run (one with `success.json`) under `work_dir`."""
  records = []
  for expert in experts_:
    task = environment_of(expert)
    for method in methods:
      for seed, run_dir in _runs(work_dir, f"{expert}_{method}_seed"):
        success_path = os.path.join(run_dir, SUCCESS_FILE)
        if not os.path.exists(success_path):
          continue
        success = json.load(open(success_path))
        record = lambda metric, value, unit, steps: results_io.Record(  # pylint: disable=cell-var-from-loop
            task=task, method=method, metric=metric, value=value, unit=unit, seed=seed,
            env_steps=steps)
        budget = None
        if method in LEARNED:
          curve = transfer_kl_svg0.evaluations(run_dir)
          records += [record("eval_return", value, "return", steps) for steps, value in curve]
          records.append(record("eval_return_auc", float(np.mean([v for _, v in curve])),
                                "return", curve[-1][0]))
          budget = curve[-1][0]
        elif method == "bc_expert":
          summary = json.load(open(os.path.join(run_dir, "summary.json")))
          budget = summary["env_steps"]
          records.append(record("eval_return", summary["final_eval_return"], "return", budget))
        else:
          records.append(record("eval_return", success["final_return"], "return", None))
        records.append(record("success_rate", success["success_rate"], "fraction", budget))
        records.append(record("final_return", success["final_return"], "return", budget))
  return records


def _runs(work_dir: str, prefix: str) -> List[Tuple[int, str]]:
  """[(seed, run directory)] of the directories `<prefix><seed>` in `work_dir`, by seed."""
  if not os.path.isdir(work_dir):
    return []
  names = [d for d in os.listdir(work_dir) if d.startswith(prefix) and d[len(prefix):].isdigit()]
  return sorted((int(d[len(prefix):]), os.path.join(work_dir, d)) for d in names)


def curve_stats(records, task: str, method: str):
  """(env steps, mean, std) over seeds of `eval_return` at the evaluation points every seed has."""
  by_seed = {}
  for r in records:
    if r.task == task and r.method == method and r.metric == "eval_return":
      by_seed.setdefault(r.seed, {})[r.env_steps] = r.value
  if not by_seed:
    return np.zeros(0), np.zeros(0), np.zeros(0)
  steps = sorted(set.intersection(*(set(curve) for curve in by_seed.values())))
  values = np.array([[curve[s] for s in steps] for curve in by_seed.values()])
  return np.array(steps), values.mean(axis=0), values.std(axis=0)


def per_seed(records, task: str, method: str, metric: str) -> Dict[int, float]:
  """{seed: value} of a run-level metric; for `eval_return`, the last evaluation's."""
  values = {}
  for r in sorted(records, key=lambda r: r.env_steps or 0):
    if r.task == task and r.method == method and r.metric == metric:
      values[r.seed] = r.value
  return values


def summarise(records) -> List[str]:
  """One line per task and method: final eval return, success rate and AUC, mean ± std."""
  lines = []
  for task in sorted({r.task for r in records}):
    for method in METHODS:
      final = per_seed(records, task, method, "eval_return")
      if not final:
        continue
      line = f"{task} {method}: final eval_return {_mean_std(final)}"
      line += f", success_rate {_mean_std(per_seed(records, task, method, 'success_rate'), 2)}"
      auc = per_seed(records, task, method, "eval_return_auc")
      if auc:
        line += f", mean over evaluations {_mean_std(auc)}"
      lines.append(line + f" (seeds {sorted(final)})")
  return lines


def _mean_std(values: Dict[int, float], digits: int = 1) -> str:
  v = list(values.values())
  return f"{np.mean(v):.{digits}f} ± {np.std(v):.{digits}f}"


def plot(records, path: str) -> None:
  """Per task: learning curves (mean ± std over seeds), the expert and BC as lines; success."""
  tasks = sorted({r.task for r in records})
  fig, axes = plt.subplots(2, len(tasks), figsize=(6 * len(tasks), 7.5), squeeze=False)
  for column, task in enumerate(tasks):
    curves, bars = axes[0, column], axes[1, column]
    for i, method in enumerate(METHODS):
      color = f"C{i}"
      if method in LEARNED:
        steps, mean, std = curve_stats(records, task, method)
        if len(steps):
          curves.plot(steps, mean, color=color, label=method)
          curves.fill_between(steps, mean - std, mean + std, color=color, alpha=0.2)
      else:
        final = list(per_seed(records, task, method, "eval_return").values())
        if final:
          curves.axhline(np.mean(final), color=color, linestyle="--",
                         label=f"{method} ({np.mean(final):.0f})")
      success = list(per_seed(records, task, method, "success_rate").values())
      if success:
        bars.bar(i, np.mean(success), color=color, alpha=0.5)
        bars.scatter([i] * len(success), success, color=color, zorder=3)
    curves.set_title(task)
    curves.set_xlabel("environment steps")
    curves.set_ylabel("evaluation return (mean ± std over seeds)")
    curves.legend(fontsize=8)
    bars.set_xticks(range(len(METHODS)), METHODS, fontsize=8)
    bars.set_ylim(0, 1.05)
    bars.set_ylabel("success rate at the end (dots: seeds)")
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--experts", nargs="+", default=list(DEFAULT_EXPERTS),
                      help="tasks, named by their expert (priorax.agents.req.experts)")
  parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
  parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
  parser.add_argument("--env-steps", type=int, default=20_000, help="per learning run")
  parser.add_argument("--eval-every", type=int, default=2_000, help="environment steps")
  parser.add_argument("--eval-episodes", type=int, default=3)
  parser.add_argument("--success-episodes", type=int, default=10,
                      help="episodes of the final success-rate evaluation of each run")
  parser.add_argument("--expert-eval-episodes", type=int, default=10)
  parser.add_argument("--expert-episodes", type=int, default=4,
                      help="req_expert: pure expert rollouts at the start (expert_episodes)")
  parser.add_argument("--bc-rollouts", type=int, default=20)
  parser.add_argument("--bc-updates", type=int, default=5_000)
  parser.add_argument("--set-req", action="append", default=[], metavar="NAME=VALUE",
                      help="req config override (both req methods)")
  parser.add_argument("--set-kl", action="append", default=[], metavar="NAME=VALUE",
                      help="kl_svg0 config override")
  parser.add_argument("--work-dir", default=WORK_DIR)
  parser.add_argument("--collect-only", action="store_true")
  args = parser.parse_args(argv)
  for expert in args.experts:
    environment_of(expert)  # Fails now on an unknown name.
  if not args.collect_only:
    total = len(args.experts) * len(args.seeds) * len(args.methods)
    start, done = time.time(), [0]

    def progress(what):
      done[0] += 1
      print(f"[{NAME}] {done[0]}/{total} {what} ({(time.time() - start) / 60:.1f} min elapsed)",
            flush=True)

    for seed in args.seeds:
      for expert in args.experts:
        run_seed(expert, seed, args, progress)
  records = collect(args.work_dir, args.experts, args.methods)
  path = results_io.write_results(NAME, records, command=" ".join(
      ["python benchmarks/req_manipulation.py", *sys.argv[1:]]))
  plot(records, path.replace(".json", ".png"))
  print("\n".join(summarise(records)))
  print(f"wrote {path}")


if __name__ == "__main__":
  main()
