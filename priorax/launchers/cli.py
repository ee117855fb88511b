"""The `priorax` command line: train, evaluate, and list what exists.

    priorax train --agent kl_svg0 --env dmc:cartpole-swingup --steps 100000 --run-dir runs/x
    priorax train --agent req --env manip:lift_brick_features --expert lift_brick --run-dir runs/r
    priorax train --agent req --env ... --dataset DIR --steps 10000 --run-dir runs/offline
    priorax evaluate --run-dir runs/x --episodes 10 [--video policy.mp4]
    priorax stream --learner independent,finetune_previous --stream tiny --run-dir runs/s
    priorax list {agents,envs}

Bad input (unknown agent, environment or config field, a wrongly typed value, a negative step
count, an unreadable checkpoint) and a diverged learner end with one line on stderr and a non-zero
exit status, never a traceback.
"""

import argparse
import dataclasses
import json
import os
import sys
from typing import List, Optional

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow only moves replay bytes: quiet it.

EXIT_BAD_INPUT = 2
EXIT_DIVERGED = 3
EXIT_INTERRUPTED = 130


class _OneLineParser(argparse.ArgumentParser):
  """Reports usage errors in one line: `priorax train: error: ...`."""

  def error(self, message):
    self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _non_negative_int(text: str) -> int:
  try:
    value = int(text.replace("_", ""))
  except ValueError:
    raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
  if value < 0:
    raise argparse.ArgumentTypeError(f"{value} is negative; expected an integer >= 0")
  return value


def _positive_int(text: str) -> int:
  value = _non_negative_int(text)
  if value == 0:
    raise argparse.ArgumentTypeError("0 is not allowed; expected an integer >= 1")
  return value


def _positive_float(text: str) -> float:
  try:
    value = float(text)
  except ValueError:
    raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
  if not value > 0:
    raise argparse.ArgumentTypeError(f"{value} must be > 0")
  return value


def make_parser() -> argparse.ArgumentParser:
  parser = _OneLineParser(prog="priorax", description=__doc__.split("\n")[0])
  commands = parser.add_subparsers(dest="command", required=True, parser_class=_OneLineParser)

  train = commands.add_parser("train", help="train an agent (resumes from --run-dir's checkpoint)",
                              description="Train an agent against an embedded Reverb server. "
                              "Re-running on a run directory with a checkpoint resumes it.")
  train.add_argument("--agent", default="kl_svg0", help="agent name (priorax list agents)")
  train.add_argument("--env", default="dmc:cartpole-swingup",
                     help="environment name (priorax list envs)")
  train.add_argument("--steps", type=_positive_int, default=100_000,
                     help="total environment steps of the run")
  train.add_argument("--seed", type=_non_negative_int, default=0)
  train.add_argument("--run-dir", required=True, help="directory for logs, checkpoints, plots")
  train.add_argument("--set", dest="overrides", action="append", default=[], metavar="NAME=VALUE",
                     help="override an agent config field, e.g. --set batch_size=512 (repeatable)")
  train.add_argument("--action-repeat", type=_positive_int, default=1)
  train.add_argument("--eval-every", type=_positive_int, default=10_000,
                     help="environment steps between evaluations")
  train.add_argument("--eval-episodes", type=_positive_int, default=5)
  train.add_argument("--checkpoint-every-s", type=_positive_float, default=300.0)
  train.add_argument("--log-every-s", type=_positive_float, default=5.0)
  train.add_argument("--video", action="store_true", help="record the final policy to policy.mp4")
  train.add_argument("--expert", metavar="NAME",
                     help="a scripted expert whose action every observation carries (agent req: "
                     "intertwined exploration and expert regression); e.g. lift_brick")
  train.add_argument("--dataset", metavar="DIR",
                     help="offline mode (agent req): learn only from the episodes in DIR; "
                     "--steps then counts learner steps")

  evaluate = commands.add_parser("evaluate", help="evaluate a run's latest checkpoint",
                                 description="Run the deterministic policy of a run's latest "
                                 "checkpoint and print its mean return.")
  evaluate.add_argument("--run-dir", required=True)
  evaluate.add_argument("--episodes", type=_positive_int, default=10)
  evaluate.add_argument("--seed", type=_non_negative_int, default=12345)
  evaluate.add_argument("--video", metavar="FILE.mp4", help="also record one episode to FILE.mp4")

  stream = commands.add_parser("stream", add_help=False,
                               help="run supervised-stream learners over a task stream "
                               "(priorax stream --help)")
  del stream  # `main` hands `priorax stream ...` to priorax.stream.cli before parsing.

  listing = commands.add_parser("list", help="list agents or environments")
  listing.add_argument("what", choices=["agents", "envs"])
  return parser


def _train(args) -> int:
  from priorax import envs
  from priorax.agents import registry
  from priorax.launchers import local
  from priorax.launchers import overrides

  entry = registry.get_agent(args.agent)
  envs.make_environment(args.env, seed=args.seed)  # Fails now on an unknown name.
  make_environment = _environment_factory(args)
  config_path = os.path.join(args.run_dir, local.CONFIG_FILE)
  base = None
  if os.path.exists(config_path) and not args.overrides:
    # Resuming without flags: reuse the agent config saved in the run directory.
    with open(config_path) as f:
      base = json.load(f).get("agent_config")
  assignments = overrides.parse_assignments(args.overrides)
  if args.dataset:
    if "offline_dataset" not in {f.name for f in dataclasses.fields(entry.config_class)}:
      raise overrides.ConfigError(f"--dataset: agent {args.agent!r} has no offline mode")
    assignments["offline_dataset"] = args.dataset
  agent_config = overrides.apply_overrides(entry.config_class, assignments, base)
  builder = entry.builder_class(agent_config)
  action_repeat = args.action_repeat
  config = local.ExperimentConfig(
      agent=args.agent,
      builder=builder,
      environment_name=args.env,
      environment_factory=make_environment,
      run_dir=args.run_dir,
      seed=args.seed,
      max_actor_steps=args.steps,
      eval_every=args.eval_every,
      eval_episodes=args.eval_episodes,
      checkpoint_every_s=args.checkpoint_every_s,
      log_every_s=args.log_every_s,
      video=args.video,
      run_description={"action_repeat": action_repeat, **({"expert": args.expert}
                                                          if args.expert else {})})
  if getattr(builder, "offline", False):
    from priorax.launchers import offline
    summary = offline.run_offline(config)
  else:
    summary = local.run_experiment(config)
  print(f"final evaluation return: {summary['final_eval_return']:.1f} "
        f"(mean of {summary['eval_episodes']} episodes, {summary['actor_steps']:,} steps)")
  return 0


def _environment_factory(args):
  """seed -> the environment of `train`, carrying the expert's actions with `--expert`."""
  from priorax import envs
  expert_name = args.expert
  if expert_name:
    from priorax.agents.req import experts
    from priorax.launchers import overrides
    try:
      experts.make_expert(expert_name, args.env)  # Fails now on a bad name or environment.
    except experts.UnknownExpertError as e:
      raise overrides.ConfigError(str(e)) from None

  def make_environment(seed):
    environment = envs.make_environment(args.env, seed, action_repeat=args.action_repeat)
    if expert_name:
      environment = experts.ExpertActionWrapper(environment,
                                                experts.make_expert(expert_name, args.env))
    return environment

  return make_environment


def _evaluate(args) -> int:
  from priorax.launchers import evaluation
  result = evaluation.evaluate_run(args.run_dir, episodes=args.episodes, seed=args.seed,
                                   video_path=args.video)
  print(f"evaluation return: {result['mean']:.1f} ± {result['std']:.1f} over {args.episodes} "
        f"episodes (checkpoint at {result['actor_steps']:,} steps)")
  if args.video:
    print(f"video: {args.video}")
  return 0


def _list(args) -> int:
  if args.what == "agents":
    from priorax.agents import registry
    print("\n".join(registry.list_agents()))
  else:
    from priorax import envs
    print("\n".join(envs.list_environments()))
  return 0


def main(argv: Optional[List[str]] = None) -> int:
  argv = sys.argv[1:] if argv is None else list(argv)
  if argv[:1] == ["stream"]:
    # Handed over whole (argparse's REMAINDER would not pass a leading --help through).
    from priorax.stream import cli as stream_cli
    return stream_cli.main(argv[1:])
  args = make_parser().parse_args(argv)
  from priorax import core
  from priorax.envs import rendering
  from priorax.envs import registry as env_registry
  from priorax.agents import registry as agent_registry
  from priorax.launchers import local
  from priorax.launchers import overrides
  from priorax.replay import episodes
  from priorax.utils import checkpointing
  bad_input = (overrides.ConfigError, episodes.DatasetError, agent_registry.UnknownAgentError,
               env_registry.UnknownEnvironmentError, checkpointing.CheckpointError,
               local.RunDirectoryError, rendering.RenderingUnavailableError)
  command = {"train": _train, "evaluate": _evaluate, "list": _list}[args.command]
  try:
    return command(args)
  except bad_input as e:
    print(f"priorax {args.command}: error: {e}", file=sys.stderr)
    return EXIT_BAD_INPUT
  except core.NonFiniteLossError as e:
    print(f"priorax {args.command}: error: {e}", file=sys.stderr)
    return EXIT_DIVERGED
  except KeyboardInterrupt:
    return EXIT_INTERRUPTED


if __name__ == "__main__":
  sys.exit(main())
