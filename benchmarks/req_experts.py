"""Success rate and return of REQ's scripted experts (`priorax.agents.req.experts`).

    python -m benchmarks.req_experts --episodes 100 [--experts bring_ball,lift_brick,stack_bricks]
        [--dataset-dir DIR]

Each expert acts alone (its action executed every step, no noise) in the environment it is made
for, for `--episodes` episodes with seeds 0, 1, …. An episode succeeds when the reward of its
last step is at least 0.5 (the object is at the goal when the episode ends). Writes
`benchmarks/results/req_experts.json` and `.png`; with `--dataset-dir`, also each expert's episodes
as an offline dataset `DIR/<expert>` (`priorax.replay.episodes`) for `req`'s offline mode.
"""

import argparse
import os
import sys
import time
from typing import Dict, List

import matplotlib  # pylint: disable=wrong-import-position

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # pylint: disable=wrong-import-position,g-import-not-at-top
import numpy as np  # pylint: disable=g-import-not-at-top

from benchmarks import results_io  # pylint: disable=g-import-not-at-top
from priorax import envs  # pylint: disable=g-import-not-at-top
from priorax.agents.req import experts  # pylint: disable=g-import-not-at-top
from priorax.replay import episodes  # pylint: disable=g-import-not-at-top

NAME = "req_experts"
SUCCESS_REWARD = 0.5


def succeeded(last_reward: float, action_repeat: int = 1) -> bool:
  """Whether an episode whose last (action-repeated, so summed) reward is `last_reward` ended in
  success: the mean reward of its last repeated steps is at least `SUCCESS_REWARD`."""
  return last_reward / action_repeat >= SUCCESS_REWARD


def run_expert(name: str, num_episodes: int, dataset_dir: str = None, action_repeat: int = 1,
               first_seed: int = 0) -> Dict[str, List[float]]:
  """Returns per-episode returns, successes, lengths and last rewards of expert `name` (seeds
  `first_seed`, `first_seed` + 1, …; each action held for `action_repeat` steps)."""
  factory, (environment_name, *_) = experts.EXPERTS[name]
  del factory
  writer = episodes.EpisodeWriter(os.path.join(dataset_dir, name)) if dataset_dir else None
  results = {"return": [], "success": [], "length": [], "last_reward": []}
  for seed in range(first_seed, first_seed + num_episodes):
    environment = experts.ExpertActionWrapper(envs.make_environment(environment_name, seed,
                                                                    action_repeat=action_repeat),
                                              experts.make_expert(name, environment_name))
    timestep = environment.reset()
    if writer:
      writer.add_first(timestep)
    total, steps = 0.0, 0
    while not timestep.last():
      action = timestep.observation[experts.EXPERT_ACTION_KEY]
      timestep = environment.step(action)
      if writer:
        writer.add(action, timestep)
      total += float(timestep.reward)
      steps += 1
    results["return"].append(total)
    results["last_reward"].append(float(timestep.reward))
    results["success"].append(float(succeeded(float(timestep.reward), action_repeat)))
    results["length"].append(steps)
    print(f"[{name}] episode {seed}: return {total:.1f}, final reward {float(timestep.reward):.2f}",
          flush=True)
  return results


def main(argv=None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--episodes", type=int, default=100)
  parser.add_argument("--experts", default=",".join(sorted(experts.EXPERTS)))
  parser.add_argument("--dataset-dir", help="also write each expert's episodes here")
  parser.add_argument("--no-write", action="store_true", help="print only (for tuning)")
  args = parser.parse_args(argv)
  records, measured = [], {}
  for name in args.experts.split(","):
    start = time.time()
    results = run_expert(name, args.episodes, args.dataset_dir)
    environment_name = experts.EXPERTS[name][1][0]
    measured[name] = results
    summary = {"success_rate": (float(np.mean(results["success"])), "fraction"),
               "mean_return": (float(np.mean(results["return"])), "return"),
               "std_return": (float(np.std(results["return"])), "return")}
    steps = int(np.sum(results["length"]))
    for metric, (value, unit) in summary.items():
      records.append(results_io.Record(environment_name, f"expert:{name}", metric, value, unit,
                                       env_steps=steps))
    print(f"[{name}] {environment_name}: success {summary['success_rate'][0]:.2f}, return "
          f"{summary['mean_return'][0]:.1f} ± {summary['std_return'][0]:.1f} over "
          f"{args.episodes} episodes ({time.time() - start:.0f} s)", flush=True)
  if args.no_write:
    return
  path = results_io.write_results(NAME, records, command=" ".join(["python -m benchmarks." + NAME,
                                                                  *sys.argv[1:]]))
  fig, axes = plt.subplots(1, len(measured), figsize=(4 * len(measured), 3.2), squeeze=False)
  for ax, (name, results) in zip(axes[0], measured.items()):
    returns = np.asarray(results["return"])
    success = np.asarray(results["success"], bool)
    ax.hist([returns[success], returns[~success]], bins=20, stacked=True,
            label=["success", "failure"])
    ax.set_title(f"{name}: success {success.mean():.0%}")
    ax.set_xlabel("episode return")
    ax.legend()
  fig.tight_layout()
  fig.savefig(path.replace(".json", ".png"), dpi=120)
  print(f"wrote {path}")


if __name__ == "__main__":
  main()
