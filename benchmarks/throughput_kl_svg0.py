"""Throughput of `kl_svg0`'s parts, measured through priorax's own components (DESIGN.md §8).

Per task (`--tasks`, default `dmc:cartpole-swingup` and `dmc:walker-walk`), each measurement for
`--seconds` of wall-clock time after a warm-up that is not timed (JIT compilation, first sample):

- `raw_env_steps_per_s`: `env.step` with uniformly random actions in [-1, 1] on the environment of
  `priorax.envs.make_environment` (all wrappers), resetting at episode ends: the ceiling for acting.
- `acting_env_steps_per_s`: `priorax.loop.EnvironmentLoop` running the `GenericActor` of
  `KLSVG0Builder.make_actor` (the training policy of `make_policy`, default 256×256 network), whose
  variable client pulls the policy every step (`variable_update_period=1`) from a learner that does
  not step, and whose `NStepTransitionAdder` writes into an embedded Reverb table. The table has a
  `MinSize` limiter (and drops its oldest items beyond `max_replay_size`), so inserts never wait
  for a learner.
- `acting_to_raw_ratio`: the two above divided; the project's target is ≥ 0.8 (plotted).
- `learner_updates_per_s`, method `kl_svg0`: `KLSVG0Learner.step()` (default config, batch 256) on
  a cycle of 16 device-resident batches (the pure update rate); method `kl_svg0_reverb`: a second
  learner fed by `make_dataset_iterator` (device prefetch) from the table, which holds what the
  measurements before wrote (at least `min_replay_size` items). The clock stops after
  `block_until_ready` on the parameters.
- `reverb_inserts_per_s`: items/s written by the `NStepTransitionAdder` from synthetic 1000-step
  episodes of the task's shapes (no environment), whole episodes so every item is flushed.
- `reverb_samples_per_s`: items/s drawn from the table through `make_dataset_iterator` at batch 256
  (device prefetch, each batch waited for on the device), no learner.

The measurements run one after another in one process (a shared 2-core machine must not run them
beside anything else: the 1-minute load average is printed before each task). Writes
`benchmarks/results/throughput_kl_svg0.json` (seed and env_steps null) and a PNG of bar charts.
About 6 × `--seconds` per task plus set-up and compilation: under 5 minutes with the defaults.

    .venv/bin/python benchmarks/throughput_kl_svg0.py --seconds 15
"""

import argparse
import itertools
import os
import shlex
import sys
from typing import Dict, List, Optional, Tuple

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import dm_env  # pylint: disable=wrong-import-position
import jax  # pylint: disable=wrong-import-position
import matplotlib  # pylint: disable=wrong-import-position

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # pylint: disable=wrong-import-position
import numpy as np  # pylint: disable=wrong-import-position
import reverb  # pylint: disable=wrong-import-position

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchmarks import learner_rates  # pylint: disable=wrong-import-position
from benchmarks import results_io  # pylint: disable=wrong-import-position
from priorax import envs  # pylint: disable=wrong-import-position
from priorax import replay  # pylint: disable=wrong-import-position
from priorax import specs  # pylint: disable=wrong-import-position
from priorax.agents import kl_svg0  # pylint: disable=wrong-import-position
from priorax.agents.kl_svg0 import builder as builder_lib  # pylint: disable=wrong-import-position
from priorax.loop import EnvironmentLoop  # pylint: disable=wrong-import-position
from priorax.utils import counting  # pylint: disable=wrong-import-position

NAME = "throughput_kl_svg0"
TASKS = ("dmc:cartpole-swingup", "dmc:walker-walk")
MEASUREMENTS = ("raw", "acting", "inserts", "samples", "learner", "learner_reverb")
METHOD = "kl_svg0"
REVERB_METHOD = "kl_svg0_reverb"
RATIO_TARGET = 0.8  # Acting should keep ≥ 80% of the bare environment's speed.
SYNTHETIC_EPISODE_LENGTH = 1000  # dm_control's default time limit at the default control step.
NUM_MEMORY_BATCHES = 16
UNITS = {
    "raw_env_steps_per_s": "env_steps/s",
    "acting_env_steps_per_s": "env_steps/s",
    "acting_to_raw_ratio": "ratio",
    "learner_updates_per_s": "updates/s",
    "reverb_inserts_per_s": "items/s",
    "reverb_samples_per_s": "items/s",
}

REPO_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _synthetic_episode(environment_spec: specs.EnvironmentSpec, rng: np.random.Generator):
  """The first timestep and the (action, next timestep) pairs of a truncated episode of random
  values with the environment's shapes and dtypes, every array a fresh one (as adders require)."""

  def observation():
    return {k: learner_rates.random_like(s, rng) for k, s in environment_spec.observations.items()}

  reward_dtype, discount_dtype = environment_spec.rewards.dtype, environment_spec.discounts.dtype
  first = dm_env.restart(observation())
  steps = []
  for t in range(SYNTHETIC_EPISODE_LENGTH):
    make = dm_env.truncation if t == SYNTHETIC_EPISODE_LENGTH - 1 else dm_env.transition
    timestep = make(np.asarray(rng.uniform(), reward_dtype), observation(),
                    np.ones((), discount_dtype))
    steps.append((learner_rates.random_like(environment_spec.actions, rng), timestep))
  return first, steps


def measure_raw_env(environment: dm_env.Environment, seconds: float,
                    rng: np.random.Generator) -> float:
  """Environment steps per second of bare `step` calls with random actions, whole episodes."""
  action_spec = environment.action_spec()

  def episode():
    timestep, steps = environment.reset(), 0
    while not timestep.last():
      timestep = environment.step(learner_rates.random_like(action_spec, rng))
      steps += 1
    return steps

  return learner_rates.rate(episode, seconds)


def _table_size(client: reverb.Client) -> int:
  return int(client.server_info()[builder_lib.REPLAY_TABLE].current_size)


Results = Dict[Tuple[str, str], float]  # (method, metric) -> value.


def measure_task(task: str, seconds: float, seed: int, measurements: List[str]) -> Results:
  """Runs the selected measurements (names in MEASUREMENTS) on one task."""
  config = kl_svg0.KLSVG0Config()
  builder = kl_svg0.KLSVG0Builder(config)
  rng = np.random.default_rng(seed)
  environment = envs.make_environment(task, seed)
  environment_spec = specs.make_environment_spec(environment)
  networks = builder.make_networks(environment_spec)
  prior = builder.make_prior(environment_spec)
  learner_key, reverb_learner_key, actor_key = jax.random.split(jax.random.PRNGKey(seed), 3)

  device = jax.devices()[0]
  batches = [jax.device_put(learner_rates.synthetic_batch(environment_spec, config.batch_size, rng),
                            device)
             for _ in range(NUM_MEMORY_BATCHES)]
  # Steps only in the `learner` measurement; before that it is the actor's static variable source.
  learner = builder.make_learner(networks, prior, itertools.cycle(batches), learner_key,
                                 environment_spec)
  table = replay.make_uniform_table(
      builder_lib.REPLAY_TABLE, max_size=config.max_replay_size, min_size_to_sample=1,
      signature=replay.NStepTransitionAdder.signature(environment_spec))
  server = replay.make_server([table])
  address = f"localhost:{server.port}"
  client = reverb.Client(address)
  results: Results = {}

  def report(metric: str, value: float, method: str = METHOD) -> None:
    results[method, metric] = value
    print(f"  {method} {metric}: {value:.3g} {UNITS[metric]}", flush=True)

  try:
    if "raw" in measurements:
      report("raw_env_steps_per_s", measure_raw_env(environment, seconds, rng))

    if "acting" in measurements:
      actor = builder.make_actor(builder.make_policy(networks, evaluation=False), learner,
                                 actor_key, builder.make_adder(client))
      actor.update(wait=True)
      actor.select_action(environment.reset().observation)  # Compiles the policy.
      loop = EnvironmentLoop(environment, actor, counter=counting.Counter(), label="actor")
      report("acting_env_steps_per_s",
             learner_rates.rate(lambda: loop.run_episode()["episode_length"], seconds))
      if (METHOD, "raw_env_steps_per_s") in results:
        report("acting_to_raw_ratio", results[METHOD, "acting_env_steps_per_s"]
               / results[METHOD, "raw_env_steps_per_s"])

    adder = builder.make_adder(client)
    first, steps = _synthetic_episode(environment_spec, rng)

    def add_episode():
      adder.add_first(first)
      for action, timestep in steps:
        adder.add(action, timestep)
      return len(steps)  # One item per step (module docstring of `priorax.replay.adders`).

    if "inserts" in measurements:
      report("reverb_inserts_per_s", learner_rates.rate(add_episode, seconds))
    reads_table = "samples" in measurements or "learner_reverb" in measurements
    while reads_table and _table_size(client) < config.min_replay_size:
      add_episode()  # Pre-fills the table when nothing else did.

    if "samples" in measurements:
      iterator = builder.make_dataset_iterator(address)
      try:
        jax.block_until_ready(next(iterator))

        def draw():
          jax.block_until_ready(next(iterator))
          return config.batch_size

        report("reverb_samples_per_s", learner_rates.rate(draw, seconds))
      finally:
        iterator.close()

    if "learner" in measurements:
      report("learner_updates_per_s", learner_rates.measure_learner(learner, seconds))

    if "learner_reverb" in measurements:
      iterator = builder.make_dataset_iterator(address)
      try:
        reverb_learner = builder.make_learner(networks, prior, iterator, reverb_learner_key,
                                              environment_spec)
        report("learner_updates_per_s", learner_rates.measure_learner(reverb_learner, seconds),
               REVERB_METHOD)
      finally:
        iterator.close()  # Before the server stops (see `PrefetchingIterator`).
  finally:
    server.stop()
  return results


def to_records(measured: Dict[str, Results]) -> List[results_io.Record]:
  return [results_io.Record(task, method, metric, value, UNITS[metric])
          for task, results in measured.items() for (method, metric), value in results.items()]


def _bars(ax, tasks: List[str], series: Dict[str, List[Optional[float]]], ylabel: str,
          title: str) -> None:
  """Grouped bars: one group per task, one bar per series (missing values are left out)."""
  width = 0.8 / len(series)
  drawn = False
  for i, (label, values) in enumerate(series.items()):
    x = [t + (i - (len(series) - 1) / 2) * width for t, v in enumerate(values) if v is not None]
    heights = [v for v in values if v is not None]
    if heights:
      ax.bar_label(ax.bar(x, heights, width, label=label), fmt="%.0f", fontsize=8)
      drawn = True
  ax.set_xticks(range(len(tasks)), [t.removeprefix("dmc:") for t in tasks])
  ax.set_ylabel(ylabel)
  ax.set_title(title)
  ax.margins(y=0.15)
  if drawn:
    ax.legend(fontsize=8)
  else:
    ax.text(0.5, 0.5, "not measured", transform=ax.transAxes, ha="center", va="center")


def plot(measured: Dict[str, Results], path: str) -> None:
  tasks = list(measured)

  def values(metric, method=METHOD):
    return [measured[t].get((method, metric)) for t in tasks]

  ratios = ", ".join(f"{t.removeprefix('dmc:')} {r:.2f}"
                     for t, r in zip(tasks, values("acting_to_raw_ratio")) if r is not None)
  fig, axes = plt.subplots(1, 3, figsize=(15, 4.5))
  _bars(axes[0], tasks, {"raw env.step": values("raw_env_steps_per_s"),
                         "acting loop (policy + adder)": values("acting_env_steps_per_s")},
        "env steps/s", f"Acting (learner idle)\nacting/raw: {ratios or 'not measured'} "
        f"(target ≥ {RATIO_TARGET})")
  _bars(axes[1], tasks, {"batches in memory": values("learner_updates_per_s"),
                         "fed by Reverb": values("learner_updates_per_s", REVERB_METHOD)},
        "updates/s", f"KLSVG0Learner, batch 256, on {jax.devices()[0].platform.upper()}")
  _bars(axes[2], tasks, {"inserts (n-step adder)": values("reverb_inserts_per_s"),
                         "samples (dataset, batch 256)": values("reverb_samples_per_s")},
        "items/s", "Reverb (embedded server)")
  fig.suptitle(f"{METHOD} throughput ({results_io.machine_description()})", fontsize=10)
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--tasks", nargs="+", default=list(TASKS), help="environment names")
  parser.add_argument("--seconds", type=float, default=15.0,
                      help="wall-clock seconds of each timed measurement")
  parser.add_argument("--only", nargs="+", choices=MEASUREMENTS, default=list(MEASUREMENTS),
                      help="run only these measurements (e.g. `--only raw acting` to profile)")
  parser.add_argument("--seed", type=int, default=0, help="seeds environments, data and networks")
  args = parser.parse_args()
  if args.seconds <= 0:
    parser.error(f"--seconds={args.seconds} must be > 0")
  for task in args.tasks:
    envs.make_environment(task, args.seed)  # Fails now on an unknown name.

  measured = {}
  for task in args.tasks:
    print(f"[{NAME}] {task} (1-min load average {os.getloadavg()[0]:.2f}; learner on "
          f"{jax.devices()[0]})", flush=True)
    measured[task] = measure_task(task, args.seconds, args.seed, args.only)

  interpreter = sys.executable
  if interpreter.startswith(REPO_DIR + os.sep):
    interpreter = os.path.relpath(interpreter, REPO_DIR)
  command = " ".join(shlex.quote(a) for a in [
      interpreter, os.path.relpath(os.path.abspath(__file__), REPO_DIR)] + sys.argv[1:])
  path = results_io.write_results(NAME, to_records(measured), command=command)
  plot(measured, os.path.join(results_io.RESULTS_DIR, f"{NAME}.png"))
  print(f"[{NAME}] wrote {path} and {NAME}.png", flush=True)


if __name__ == "__main__":
  main()
