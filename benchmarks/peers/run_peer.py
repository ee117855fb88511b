"""Trains one peer SAC (Stable-Baselines3 or sbx) on a dm_control task and times its training phase.

Run by `benchmarks/peers_sac.py` with the Python of the peer's own virtual environment; it prints
nothing the caller parses and writes its figures to `--out` as JSON.

Setting (the same as priorax's `kl_svg0` in that benchmark): policy and twin critics 256×256 MLPs,
batch 256, one gradient update per environment step, `--warmup` uniformly random steps before the
first update, then `--steps` training steps, CPU only.

Timing: the clock starts once the first training step (environment step `warmup + 1`) and its
gradient update are done, i.e. at the start of step `warmup + 2`, so start-up, the warm-up and
one-off compilation (sbx's JIT of the update and the actor) are excluded; it stops when `learn`
returns, after the last update. `train_env_steps_per_s = (steps - 1) / elapsed`.
"""

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import dmc_gym
from stable_baselines3.common.callbacks import BaseCallback


class _TrainClock(BaseCallback):
  """Records when the rollout after step `start_at` begins, i.e. after that step's update."""

  def __init__(self, start_at: int):
    super().__init__()
    self._start_at = start_at
    self.start_time = None
    self.start_step = None

  def _on_rollout_start(self) -> None:
    if self.start_time is None and self.num_timesteps >= self._start_at:
      self.start_time = time.perf_counter()
      self.start_step = self.num_timesteps

  def _on_step(self) -> bool:
    return True


def _make_agent(library: str, env, args):
  common = dict(
      policy="MlpPolicy", env=env, learning_rate=3e-4, buffer_size=args.warmup + args.steps,
      learning_starts=args.warmup, batch_size=256, tau=0.005, gamma=0.99, train_freq=1,
      gradient_steps=1, ent_coef="auto", seed=args.seed, verbose=0,
      policy_kwargs={"net_arch": [256, 256]})
  if library == "sb3":
    from stable_baselines3 import SAC
    return SAC(device="cpu", **common)
  if library == "sbx":
    from sbx import SAC
    return SAC(**common)
  raise ValueError(f"library={library!r} is unknown; expected 'sb3' or 'sbx'")


def _versions(library: str) -> dict:
  import numpy
  import stable_baselines3
  import torch
  versions = {"numpy": numpy.__version__, "stable_baselines3": stable_baselines3.__version__,
              "torch": torch.__version__, "torch_threads": torch.get_num_threads()}
  if library == "sbx":
    import jax
    import sbx
    versions.update(sbx=sbx.__version__, jax=jax.__version__,
                    jax_devices=[str(d) for d in jax.devices()])
  return versions


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--library", choices=("sb3", "sbx"), required=True)
  parser.add_argument("--env", default="dmc:cartpole-swingup")
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--warmup", type=int, default=1000)
  parser.add_argument("--steps", type=int, default=5000, help="training steps after the warm-up")
  parser.add_argument("--out", required=True, help="JSON file for the measured figures")
  args = parser.parse_args()
  if args.steps < 2:
    parser.error(f"--steps={args.steps} must be >= 2 (the first training step is not timed)")

  env = dmc_gym.make(args.env, seed=args.seed)
  agent = _make_agent(args.library, env, args)
  clock = _TrainClock(start_at=args.warmup + 1)
  agent.learn(total_timesteps=args.warmup + args.steps, callback=clock)
  end = time.perf_counter()

  timed_steps = agent.num_timesteps - clock.start_step
  returns = [info["r"] for info in agent.ep_info_buffer]
  result = {
      "library": args.library,
      "env": args.env,
      "seed": args.seed,
      "warmup_steps": args.warmup,
      "env_steps": agent.num_timesteps,
      "timed_env_steps": timed_steps,
      "train_seconds": end - clock.start_time,
      "train_env_steps_per_s": timed_steps / (end - clock.start_time),
      "episodes": len(returns),
      "last_episode_return": returns[-1] if returns else None,
      "versions": _versions(args.library),
  }
  with open(args.out, "w") as f:
    json.dump(result, f, indent=2)
  print(json.dumps(result))


if __name__ == "__main__":
  main()
