"""Learner updates/s of `kl_svg0` on every JAX platform of one machine (DESIGN.md §9), side by side.

The learner is the one `KLSVG0Builder.make_learner` builds (default config, uniform prior, twin
critics, α tuned), with policy and critic torsos of `--hidden-sizes` units (two layers each), fed a
cycle of 16 device-resident synthetic batches of the task's shapes (`learner_rates`), so the figure
is the update itself and the host's dispatch of it, not the sampler. For every platform (`cpu`,
and `gpu` or `tpu` when JAX sees one), task, batch size, width and number K of updates per dispatch
(`num_sgd_steps_per_step`, `--updates-per-dispatch`) it records

- `learner_updates_per_s` (K per `step`) over `--seconds` after the first (compiling) updates; the
  clock stops after `block_until_ready` on the parameters;
- `learner_transitions_per_s`: the same times the batch size;
- `compile_s`: the wall time of the first update (tracing, XLA compilation and one step);

and, per configuration, `accelerator_to_cpu_ratio` of the updates/s. The method name says the
platform, batch, width and K when above 1 (`kl_svg0_gpu_b1024_h256`, `kl_svg0_gpu_b256_h256_k8`). The tasks' shapes are dm_control's
(`TASK_SHAPES`, checked against the real environments by tests/benchmarks), so neither dm_control
nor Reverb is needed: this runs on an accelerator machine that has only JAX and haiku. Writes
`benchmarks/results/learner_accelerator.json` and a PNG of updates/s against batch size.

    .venv/bin/python benchmarks/learner_accelerator.py --seconds 5
"""

import argparse
import itertools
import os
import platform
import sys
import time
from typing import Dict, List, Sequence, Tuple

import jax
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # pylint: disable=wrong-import-position
import numpy as np  # pylint: disable=wrong-import-position
from dm_env import specs as dm_specs  # pylint: disable=wrong-import-position

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchmarks import learner_rates  # pylint: disable=wrong-import-position
from benchmarks import results_io  # pylint: disable=wrong-import-position
from priorax import specs  # pylint: disable=wrong-import-position
from priorax.agents import kl_svg0  # pylint: disable=wrong-import-position

NAME = "learner_accelerator"
NUM_MEMORY_BATCHES = 16
# Observation sizes (per key, in dm_control's order) and action size of each task.
TASK_SHAPES: Dict[str, Tuple[Dict[str, int], int]] = {
    "dmc:cartpole-swingup": ({"position": 3, "velocity": 2}, 1),
    "dmc:walker-walk": ({"orientations": 14, "height": 1, "velocity": 9}, 6),
    "dmc:humanoid-run": ({"joint_angles": 21, "head_height": 1, "extremities": 12,
                          "torso_vertical": 3, "com_velocity": 3, "velocity": 27}, 21),
}


def environment_spec(task: str) -> specs.EnvironmentSpec:
  """The spec `specs.make_environment_spec` reads from `priorax.envs.make_environment(task)`."""
  if task not in TASK_SHAPES:
    raise ValueError(f"task {task!r} has no shapes here; expected one of {sorted(TASK_SHAPES)}")
  observation_sizes, action_size = TASK_SHAPES[task]
  return specs.EnvironmentSpec(
      observations={k: dm_specs.Array((n,), np.float32, name=k)
                    for k, n in observation_sizes.items()},
      actions=dm_specs.BoundedArray((action_size,), np.float32, -1.0, 1.0),
      rewards=dm_specs.Array((), np.float32, name="reward"),
      discounts=dm_specs.BoundedArray((), np.float32, 0.0, 1.0, name="discount"))


def method_name(platform_name: str, batch_size: int, width: int, updates_per_dispatch: int) -> str:
  suffix = f"_k{updates_per_dispatch}" if updates_per_dispatch > 1 else ""
  return f"kl_svg0_{platform_name}_b{batch_size}_h{width}{suffix}"


def measure(task: str, device: jax.Device, batch_size: int, width: int, seconds: float,
            seed: int, updates_per_dispatch: int = 1) -> Dict[str, float]:
  """Compile time and updates/s of one learner whose state and batches live on `device`."""
  config = kl_svg0.KLSVG0Config(batch_size=batch_size, policy_hidden_sizes=(width, width),
                                critic_hidden_sizes=(width, width),
                                num_sgd_steps_per_step=updates_per_dispatch)
  builder = kl_svg0.KLSVG0Builder(config)
  spec = environment_spec(task)
  rng = np.random.default_rng(seed)
  with jax.default_device(device):
    batches = [jax.device_put(learner_rates.synthetic_batch(spec, batch_size, rng), device)
               for _ in range(NUM_MEMORY_BATCHES)]
    learner = builder.make_learner(builder.make_networks(spec), builder.make_prior(spec),
                                   itertools.cycle(batches), jax.random.PRNGKey(seed), spec)
    start = time.perf_counter()
    learner.step()
    learner_rates.wait_for_learner(learner)
    compile_s = time.perf_counter() - start
    updates_per_s = learner_rates.measure_learner(learner, seconds) * updates_per_dispatch
  return {"compile_s": compile_s, "learner_updates_per_s": updates_per_s,
          "learner_transitions_per_s": updates_per_s * batch_size}


UNITS = {"compile_s": "s", "learner_updates_per_s": "updates/s",
         "learner_transitions_per_s": "transitions/s", "accelerator_to_cpu_ratio": "ratio"}


def accelerator_description() -> str:
  names = sorted({d.device_kind for d in jax.devices() if d.platform != "cpu"})
  return ", ".join(names) if names else "no accelerator"


def plot(records: List[results_io.Record], tasks: Sequence[str], batch_sizes: Sequence[int],
         widths: Sequence[int], updates_per_dispatch: Sequence[int], title: str,
         path: str) -> None:
  figure, axes = plt.subplots(1, len(tasks), figsize=(5.5 * len(tasks), 4.2), squeeze=False)
  rates = {(r.task, r.method): r.value for r in records if r.metric == "learner_updates_per_s"}
  platforms = sorted({m.split("_")[2] for _, m in rates})
  for ax, task in zip(axes[0], tasks):
    for platform_name, width, k in itertools.product(platforms, widths, updates_per_dispatch):
      points = sorted((b, rates[task, method_name(platform_name, b, width, k)])
                      for b in batch_sizes
                      if (task, method_name(platform_name, b, width, k)) in rates)
      if points:
        ax.plot(*zip(*points), marker="o", linestyle="-" if k == 1 else "--",
                label=f"{platform_name.upper()}, {width}×{width}, {k} update(s)/dispatch")
    ax.set(xscale="log", yscale="log", xlabel="batch size", ylabel="learner updates/s",
           title=task)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
  figure.suptitle(title)
  figure.tight_layout()
  figure.savefig(path, dpi=120)
  plt.close(figure)


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--tasks", nargs="+", default=["dmc:walker-walk", "dmc:humanoid-run"],
                      choices=sorted(TASK_SHAPES))
  parser.add_argument("--batch-sizes", nargs="+", type=int, default=[256, 1024, 4096])
  parser.add_argument("--hidden-sizes", nargs="+", type=int, default=[256, 1024],
                      help="widths of the two-layer policy and critic torsos")
  parser.add_argument("--updates-per-dispatch", nargs="+", type=int, default=[1],
                      help="values of num_sgd_steps_per_step (K updates in one jitted call)")
  parser.add_argument("--platforms", nargs="+", default=None,
                      help="JAX platforms to measure (default: cpu and every accelerator seen)")
  parser.add_argument("--seconds", type=float, default=5.0,
                      help="wall-clock seconds of each timed measurement")
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--output-name", default=NAME,
                      help="results name: benchmarks/results/<name>.json and .png")
  args = parser.parse_args()
  if args.seconds <= 0:
    parser.error(f"--seconds={args.seconds} must be > 0")
  for name, values in (("--batch-sizes", args.batch_sizes), ("--hidden-sizes", args.hidden_sizes),
                       ("--updates-per-dispatch", args.updates_per_dispatch)):
    if min(values) <= 0:
      parser.error(f"{name}={values} must all be > 0")
  seen = sorted({d.platform for d in jax.devices()} | {"cpu"})
  platforms = args.platforms or seen
  if set(platforms) - set(seen):
    parser.error(f"--platforms={platforms}: JAX sees only {seen}")

  records: List[results_io.Record] = []
  for task, platform_name in itertools.product(args.tasks, platforms):
    device = jax.devices(platform_name)[0]
    print(f"[{NAME}] {task} on {device} ({device.device_kind})", flush=True)
    for batch_size, width, k in itertools.product(args.batch_sizes, args.hidden_sizes,
                                                  args.updates_per_dispatch):
      measured = measure(task, device, batch_size, width, args.seconds, args.seed, k)
      method = method_name(platform_name, batch_size, width, k)
      print(f"  batch {batch_size:5d} width {width:5d} K {k:3d}: "
            f"{measured['learner_updates_per_s']:9.1f}"
            f" updates/s, {measured['learner_transitions_per_s']:11.0f} transitions/s, "
            f"first update {measured['compile_s']:.1f} s", flush=True)
      records += [results_io.Record(task, method, metric, value, UNITS[metric], seed=args.seed)
                  for metric, value in measured.items()]
  rates = {(r.task, r.method): r.value for r in records if r.metric == "learner_updates_per_s"}
  for task, platform_name, batch_size, width, k in itertools.product(
      args.tasks, [p for p in platforms if p != "cpu"], args.batch_sizes, args.hidden_sizes,
      args.updates_per_dispatch):
    cpu = rates.get((task, method_name("cpu", batch_size, width, k)))
    if cpu:
      method = method_name(platform_name, batch_size, width, k)
      ratio = rates[task, method] / cpu
      print(f"[{NAME}] {task} batch {batch_size} width {width} K {k}: "
            f"{platform_name}/cpu {ratio:.1f}×")
      records.append(results_io.Record(task, method, "accelerator_to_cpu_ratio", ratio,
                                       UNITS["accelerator_to_cpu_ratio"], seed=args.seed))
  machine = (f"{results_io.machine_description()}; accelerator: {accelerator_description()}; "
             f"jax {jax.__version__}, Python {platform.python_version()}")
  path = results_io.write_results(args.output_name, records, machine=machine)
  on = [f"its host's {os.cpu_count()}-core CPU" if p == "cpu" else accelerator_description()
        for p in platforms]
  plot(records, args.tasks, args.batch_sizes, args.hidden_sizes, args.updates_per_dispatch,
       f"kl_svg0 learner on {' and '.join(on)}",
       os.path.join(results_io.RESULTS_DIR, f"{args.output_name}.png"))
  print(f"[{NAME}] wrote {path} and {args.output_name}.png", flush=True)


if __name__ == "__main__":
  main()
