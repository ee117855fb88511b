"""The `priorax` command line: train, evaluate, and list what exists.

    priorax train --agent kl_svg0 --env dmc:cartpole-swingup --steps 100000 --run-dir runs/x
    priorax train --env family:reacher_targets-holdout --prior-from runs/family --run-dir runs/t
    priorax launch --agent kl_svg0 --env dmc:walker-walk --num-actors 4 --run-dir runs/y
    priorax train --agent req --env manip:lift_brick_features --expert lift_brick --run-dir runs/r
    priorax train --agent req --env ... --dataset DIR --steps 10000 --run-dir runs/offline
    priorax evaluate --run-dir runs/x --episodes 10 [--video policy.mp4]
    priorax distill --expert runs/x --method apc --rollouts 5 --run-dir runs/student
    priorax stream --learner independent,finetune_previous --stream tiny --run-dir runs/s
    priorax npmp --library LIB --run-dir runs/npmp [--skills a,b] [--steps N] [--set lfpc=true]
    priorax npmp-track --run-dir runs/npmp --skill NAME [--video tracked.mp4]
    priorax train --agent kl_svg0 --env skill:walker-goto_6 --low-level runs/npmp --run-dir runs/h
    priorax library --body walker --skills stand,speed_1 --steps 100000 --out libraries/walker
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
from typing import Dict, List, Optional

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow only moves replay bytes: quiet it.

EXIT_BAD_INPUT = 2
EXIT_DIVERGED = 3
EXIT_INTERRUPTED = 130
# `launch` actors pull the policy every this many steps unless `--set variable_update_period=K`:
# each pull is a remote call the learner answers, so pulling every step would load it.
LAUNCH_VARIABLE_UPDATE_PERIOD = 100


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


def _non_negative_float(text: str) -> float:
  try:
    value = float(text)
  except ValueError:
    raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
  if not value >= 0:
    raise argparse.ArgumentTypeError(f"{value} is negative; expected a number >= 0")
  return value


def _add_periodic_arguments(parser: argparse.ArgumentParser, log_every_s: float = 5.0) -> None:
  """Seconds between checkpoints and between progress lines, for every command that runs."""
  parser.add_argument("--checkpoint-every-s", type=_positive_float, default=300.0)
  parser.add_argument("--log-every-s", type=_positive_float, default=log_every_s)


def _add_experiment_arguments(parser: argparse.ArgumentParser) -> None:
  """The flags of an `ExperimentConfig`, shared by `train` and `launch`."""
  parser.add_argument("--agent", default="kl_svg0", help="agent name (priorax list agents)")
  parser.add_argument("--env", default="dmc:cartpole-swingup",
                      help="environment name (priorax list envs)")
  parser.add_argument("--steps", type=_positive_int, default=100_000,
                      help="total environment steps of the run")
  parser.add_argument("--seed", type=_non_negative_int, default=0)
  parser.add_argument("--run-dir", required=True, help="directory for logs, checkpoints, plots")
  parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="NAME=VALUE",
                      help="override an agent config field, e.g. --set batch_size=512 (repeatable)")
  parser.add_argument("--action-repeat", type=_positive_int, default=1)
  parser.add_argument("--eval-every", type=_positive_int, default=10_000,
                      help="environment steps between evaluations")
  parser.add_argument("--eval-episodes", type=_positive_int, default=5)
  _add_periodic_arguments(parser)
  parser.add_argument("--video", action="store_true", help="record the final policy to policy.mp4")
  parser.add_argument("--prior-from", metavar="RUN_DIR",
                      help="transfer: initialise the learned prior from RUN_DIR's trained prior "
                      "(sets prior_from; the prior's kind, keys and torso default to RUN_DIR's)")
  parser.add_argument("--freeze-prior", action="store_true",
                      help="with --prior-from: keep the transferred prior fixed (no update)")


def make_parser() -> argparse.ArgumentParser:
  parser = _OneLineParser(prog="priorax", description=__doc__.split("\n")[0])
  commands = parser.add_subparsers(dest="command", required=True, parser_class=_OneLineParser)

  train = commands.add_parser("train", help="train an agent (resumes from --run-dir's checkpoint)",
                              description="Train an agent against an embedded Reverb server. "
                              "Re-running on a run directory with a checkpoint resumes it.")
  _add_experiment_arguments(train)
  train.add_argument("--expert", metavar="NAME",
                     help="a scripted expert whose action every observation carries (agent req: "
                     "intertwined exploration and expert regression); e.g. lift_brick")
  train.add_argument("--low-level", metavar="NPMP_RUN_DIR",
                     help="reuse motor primitives: the agent's action is the latent z (scaled to "
                     "±3) of the frozen decoder of this `priorax npmp` run, which acts at the "
                     "library's action repeat; --action-repeat then counts decoder steps per z")
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

  distill = commands.add_parser(
      "distill", help="distil an expert into a student (bc, dagger, apc, naive_abc, lfpc)",
      description="Collect expert rollouts, label them (and, for apc/naive_abc/lfpc, synthetic "
      "states around them) in an embedded Reverb server, train a student policy and evaluate it. "
      "Re-running on a run directory with a checkpoint resumes it.")
  distill.add_argument("--expert", required=True, metavar="RUN_DIR",
                       help="run directory of a trained policy (priorax train), or 'scripted' "
                       "for the environment's hand-written controller")
  distill.add_argument("--method", required=True,
                       choices=["bc", "dagger", "apc", "naive_abc", "lfpc"])
  distill.add_argument("--env", help="environment name (default: the expert's)")
  distill.add_argument("--rollouts", type=_positive_int, required=True,
                       help="K, environment rollouts of the run (expert ones; DAgger: in total)")
  distill.add_argument("--student-size", metavar="H1,H2,...",
                       help="the student's hidden layer sizes (default 256,256,256)")
  distill.add_argument("--student-obs", nargs="+", metavar="KEY",
                       help="observation keys the student sees (default: all)")
  distill.add_argument("--updates", type=_positive_int, help="learner steps of the run")
  distill.add_argument("--seed", type=_non_negative_int, default=0)
  distill.add_argument("--run-dir", required=True, help="directory for logs, checkpoints, plots")
  distill.add_argument("--set", dest="overrides", action="append", default=[],
                       metavar="NAME=VALUE", help="override a CloningConfig field (repeatable)")
  distill.add_argument("--action-repeat", type=_positive_int,
                       help="default: the expert run's action repeat")
  distill.add_argument("--eval-every", type=_positive_int, default=1_000,
                       help="learner steps between evaluations")
  distill.add_argument("--eval-episodes", type=_positive_int, default=50)
  distill.add_argument("--eval-noise", type=float, default=0.2,
                       help="std of the Gaussian noise on the student's action when evaluated")
  _add_periodic_arguments(distill)

  launch = commands.add_parser(
      "launch", help="train on Ray: a Reverb server, a learner, N actors, an evaluator",
      description="Train an agent with N actor processes on a local Ray instance (listening on "
      "127.0.0.1 only) or on the Ray cluster at --ray-address. Re-running on a run directory with "
      "a checkpoint resumes it (learner, counts and replay). Actors pull the policy every "
      f"{LAUNCH_VARIABLE_UPDATE_PERIOD} steps unless --set variable_update_period=K.")
  _add_experiment_arguments(launch)
  launch.add_argument("--num-actors", type=_positive_int, default=2)
  launch.add_argument("--ray-address", default=None,
                      help="join this Ray cluster (e.g. auto or HEAD:6379) instead of starting one")
  launch.add_argument("--learner-gpus", type=_non_negative_float, default=0.0,
                      help="GPUs the learner requests")
  launch.add_argument("--actor-cpus", type=_positive_float, default=1.0,
                      help="CPUs each actor reserves")

  npmp = commands.add_parser(
      "npmp", help="distil an expert library into neural probabilistic motor primitives",
      description="Train an NPMP (encoder, AR(1) latent prior, decoder) offline on the reference "
      "episodes of an expert library (priorax library), through an embedded Reverb server. "
      "Re-running on a run directory with a checkpoint resumes it.")
  npmp.add_argument("--library", required=True, metavar="DIR", help="the expert library")
  npmp.add_argument("--run-dir", required=True, help="directory for logs and checkpoints")
  npmp.add_argument("--skills", metavar="A,B,...",
                    help="train on these skills only (default: all; the rest are held out)")
  npmp.add_argument("--steps", type=_positive_int, default=10_000, help="learner steps")
  npmp.add_argument("--seed", type=_non_negative_int, default=0)
  npmp.add_argument("--set", dest="overrides", action="append", default=[], metavar="NAME=VALUE",
                    help="override an NPMPConfig field, e.g. --set lfpc=true (repeatable)")
  _add_periodic_arguments(npmp)

  npmp_track = commands.add_parser(
      "npmp-track", help="one-shot tracking of a library skill by a trained NPMP",
      description="Run the NPMP's encoder on a reference episode of a skill and its decoder in "
      "closed loop in that skill's environment; print the return fraction against the reference.")
  npmp_track.add_argument("--run-dir", required=True, help="a `priorax npmp` run directory")
  npmp_track.add_argument("--skill", required=True, help="a skill of the library")
  npmp_track.add_argument("--library", metavar="DIR", help="default: the run's library")
  npmp_track.add_argument("--episode", type=_non_negative_int, default=0,
                          help="which reference episode of the skill")
  npmp_track.add_argument("--seed", type=_non_negative_int, default=0,
                          help="environment seed if none reproduces the reference's start")
  npmp_track.add_argument("--video", metavar="FILE.mp4", help="also record the tracking")

  library = commands.add_parser(
      "library", help="train a library of single-skill experts and record their rollouts",
      description="Train one kl_svg0 expert per skill (environment skill:<body>-<skill>), roll "
      "out its mean action and index both in OUT/library.json. Re-running on the same --out "
      "skips finished skills and resumes an interrupted one.")
  library.add_argument("--body", required=True,
                       help="walker, cheetah, humanoid, or cmu_humanoid (mocap tracking skills)")
  library.add_argument("--skills", metavar="A,B,...",
                       help="skills of the body, in order (default: the body's default set; "
                       "priorax list envs shows skill:<body>-<skill>)")
  library.add_argument("--out", required=True, help="the library directory")
  library.add_argument("--steps", type=_positive_int, default=100_000,
                       help="agent steps of each expert's training (x --action-repeat "
                       "environment steps)")
  library.add_argument("--episodes", type=_positive_int, default=10,
                       help="reference episodes rolled out per skill")
  library.add_argument("--rollout-noise", type=_non_negative_float, default=0.0,
                       help="std of Gaussian noise on the expert's mean action in rollouts")
  library.add_argument("--action-repeat", type=_positive_int, default=2)
  library.add_argument("--seed", type=_non_negative_int, default=0)
  library.add_argument("--set", dest="overrides", action="append", default=[],
                       metavar="NAME=VALUE", help="override a kl_svg0 config field (repeatable)")
  _add_periodic_arguments(library, log_every_s=30.0)
  library.add_argument("--mocap-dir", metavar="DIR",
                       help="where dm_control's CMU mocap file cmu_2020_*.h5 is (for "
                       "--body cmu_humanoid; default $PRIORAX_MOCAP_DIR or ~/.dm_control)")

  stream = commands.add_parser("stream", add_help=False,
                               help="run supervised-stream learners over a task stream "
                               "(priorax stream --help)")
  del stream  # `main` hands `priorax stream ...` to priorax.stream.cli before parsing.

  listing = commands.add_parser("list", help="list agents or environments")
  listing.add_argument("what", choices=["agents", "envs"])
  return parser


def _experiment_config(args, default_overrides: Optional[Dict[str, str]] = None):
  """The `ExperimentConfig` of `train`/`launch` flags; `default_overrides` apply unless `--set`
  names the same field or a resumed run's saved agent config is reused."""
  from priorax import envs
  from priorax.agents import registry
  from priorax.launchers import local
  from priorax.launchers import overrides

  entry = registry.get_agent(args.agent)
  envs.make_environment(args.env, seed=args.seed)  # Fails now on an unknown name.
  make_environment = _environment_factory(args)
  config_path = os.path.join(args.run_dir, local.CONFIG_FILE)
  assignments = overrides.parse_assignments(args.overrides)
  if args.prior_from is not None:
    transferred = _transferred_settings(args.prior_from, entry.config_class,
                                        with_critic=assignments.get("transfer") == "iwpla")
    assignments = {**transferred, **assignments, "prior_from": args.prior_from}
  if args.freeze_prior:
    assignments["freeze_prior"] = "true"
  if getattr(args, "dataset", None):
    if "offline_dataset" not in {f.name for f in dataclasses.fields(entry.config_class)}:
      raise overrides.ConfigError(f"--dataset: agent {args.agent!r} has no offline mode")
    assignments["offline_dataset"] = args.dataset
  base = None
  if os.path.exists(config_path) and not assignments:
    # Resuming without flags: reuse the agent config saved in the run directory.
    with open(config_path) as f:
      base = json.load(f).get("agent_config")
  else:
    assignments = {**(default_overrides or {}), **assignments}
  agent_config = overrides.apply_overrides(entry.config_class, assignments, base)
  builder = entry.builder_class(agent_config)
  action_repeat = args.action_repeat
  return local.ExperimentConfig(
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
      run_description={"action_repeat": action_repeat,
                       **({"expert": args.expert} if getattr(args, "expert", None) else {}),
                       **({"low_level": args.low_level} if getattr(args, "low_level", None)
                          else {})})


def _train(args) -> int:
  from priorax.launchers import local
  config = _experiment_config(args)
  if getattr(config.builder, "offline", False):
    from priorax.launchers import offline
    summary = offline.run_offline(config)
  else:
    summary = local.run_experiment(config)
  print(f"final evaluation return: {summary['final_eval_return']:.1f} "
        f"(mean of {summary['eval_episodes']} episodes, {summary['actor_steps']:,} steps)")
  write_run_report = getattr(config.builder, "write_run_report", None)  # Agent-specific plots.
  report = write_run_report and write_run_report(config.run_dir, config.eval_episodes)
  if report:
    print(f"belief error by step: {report['first_step_error']:.3f} at the first decision, "
          f"{report['last_step_error']:.3f} at the last ({report['plot']})")
  return 0


def _distill(args) -> int:
  from priorax import envs
  from priorax.agents import cloning
  from priorax.launchers import distill
  from priorax.launchers import overrides

  if args.eval_noise < 0:
    raise overrides.ConfigError(f"--eval-noise {args.eval_noise} must be >= 0")
  if args.expert == "scripted":
    if not args.env:
      raise overrides.ConfigError("--expert scripted needs --env")
    try:
      expert = cloning.make_scripted_expert(args.env)
    except ValueError as e:
      raise overrides.ConfigError(str(e)) from None
  else:
    expert = cloning.load_expert(args.expert)
  env_name = args.env or expert.run["env"]
  action_repeat = args.action_repeat or int(expert.run.get("action_repeat", 1))
  envs.make_environment(env_name, seed=args.seed)  # Fails now on an unknown name.
  assignments = {"method": args.method, **overrides.parse_assignments(args.overrides)}
  if args.student_size:
    assignments["policy_hidden_sizes"] = args.student_size
  if args.student_obs:
    assignments["policy_observation_keys"] = ",".join(args.student_obs)
  if args.updates:
    assignments["num_updates"] = str(args.updates)
  config_path = os.path.join(args.run_dir, "config.json")
  base = None
  if os.path.exists(config_path):
    # Resuming: start from the saved config, so only flags given again need to match it.
    with open(config_path) as f:
      base = json.load(f).get("agent_config")
  agent_config = overrides.apply_overrides(cloning.CloningConfig, assignments, base)
  summary = distill.run_distillation(distill.DistillConfig(
      builder=cloning.CloningBuilder(agent_config),
      expert=expert,
      environment_name=env_name,
      environment_factory=lambda seed: envs.make_environment(env_name, seed,
                                                             action_repeat=action_repeat),
      run_dir=args.run_dir,
      rollouts=args.rollouts,
      seed=args.seed,
      action_repeat=action_repeat,
      eval_every=args.eval_every,
      eval_episodes=args.eval_episodes,
      eval_noise=args.eval_noise,
      checkpoint_every_s=args.checkpoint_every_s,
      log_every_s=args.log_every_s))
  print(f"student evaluation return: {summary['final_eval_return']:.1f} (mean of "
        f"{summary['eval_episodes']} episodes, action noise {summary['eval_noise']}; "
        f"{summary['env_steps']:,} environment steps of data)")
  return 0


# Fields describing the prior that `--prior-from` copies from the source run unless set by --set
# (`layer_norm` shapes the prior's parameters too; a hierarchical prior's low level is part of
# it), and those of the critic torso that `transfer=iwpla` (req) reuses.
_TRANSFERRED_PRIOR_FIELDS = ("prior", "prior_observation_keys", "prior_hidden_sizes", "layer_norm",
                             "latent_size", "low_level_observation_keys", "low_level_hidden_sizes")
_TRANSFERRED_CRITIC_FIELDS = ("critic_hidden_sizes",)


def _transferred_settings(run_dir: str, config_class, with_critic: bool) -> dict:
  """The source run's prior (and, `with_critic`, critic torso) settings as `--set` strings, for
  the fields `config_class` has."""
  from priorax.utils import checkpointing
  path = os.path.join(run_dir, "config.json")
  try:
    with open(path) as f:
      saved = json.load(f).get("agent_config", {})
  except (OSError, json.JSONDecodeError) as e:
    raise checkpointing.CheckpointError(f"--prior-from {run_dir}: cannot read {path} ({e})"
                                        ) from None
  fields = {f.name for f in dataclasses.fields(config_class)}
  settings = {}
  for name in _TRANSFERRED_PRIOR_FIELDS + (_TRANSFERRED_CRITIC_FIELDS if with_critic else ()):
    value = saved.get(name)
    if name in fields and value is not None:
      settings[name] = ",".join(map(str, value)) if isinstance(value, list) else str(value)
  return settings


def _launch(args) -> int:
  if args.ray_address is None:
    # A local Ray instance listens on 127.0.0.1 only if this is set before Ray is imported.
    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
  from priorax.launchers import ray as ray_launcher
  ray_config = ray_launcher.RayConfig(num_actors=args.num_actors, address=args.ray_address,
                                      learner_gpus=args.learner_gpus, actor_cpus=args.actor_cpus)
  config = _experiment_config(
      args, {"variable_update_period": str(LAUNCH_VARIABLE_UPDATE_PERIOD)})
  summary = ray_launcher.run_experiment(config, ray_config)
  print(f"final evaluation return: {summary['final_eval_return']:.1f} "
        f"(mean of {summary['eval_episodes']} episodes, {summary['actor_steps']:,} steps, "
        f"{summary['num_actors']} actors)")
  return 0


def _environment_factory(args):
  """seed -> the environment of `train`, carrying the expert's actions with `--expert`."""
  from priorax import envs
  expert_name = getattr(args, "expert", None)
  low_level = getattr(args, "low_level", None)
  if low_level:
    from priorax.agents.npmp import acting as npmp_acting
    if expert_name:
      from priorax.launchers import overrides
      raise overrides.ConfigError("--low-level and --expert cannot be combined")
    npmp_acting.make_low_level_environment(args.env, args.seed, low_level)  # Fails now if bad.
    return lambda seed: npmp_acting.make_low_level_environment(
        args.env, seed, low_level, latent_repeat=args.action_repeat)
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


def _npmp(args) -> int:
  from priorax.agents import npmp
  from priorax.experts import library
  from priorax.launchers import local
  from priorax.launchers import npmp as npmp_launcher
  from priorax.launchers import overrides
  skills = tuple(s.strip() for s in args.skills.split(",") if s.strip()) if args.skills else None
  config_path = os.path.join(args.run_dir, local.CONFIG_FILE)
  if os.path.exists(config_path):
    # Resuming: start from the saved config, so only flags given again need to match it.
    with open(config_path) as f:
      base = json.load(f).get("agent_config")
  else:
    base = dataclasses.asdict(npmp.NPMPConfig.for_body(library.load_library(args.library).body))
  agent_config = overrides.apply_overrides(npmp.NPMPConfig,
                                           overrides.parse_assignments(args.overrides), base)
  summary = npmp_launcher.run_npmp(npmp_launcher.NPMPRunConfig(
      library=args.library, run_dir=args.run_dir, agent_config=agent_config, skills=skills,
      seed=args.seed, steps=args.steps, checkpoint_every_s=args.checkpoint_every_s,
      log_every_s=args.log_every_s))
  last = summary["last_logged_metrics"]
  print(f"trained {summary['learner_steps']:,} learner steps on {len(summary['skills'])} skills "
        f"({summary['transitions']:,} expert transitions); loss "
        f"{last.get('loss', float('nan')):.3f} at learner step "
        f"{int(last.get('learner_steps', 0)):,}")
  return 0


def _npmp_track(args) -> int:
  from priorax.launchers import npmp as npmp_launcher
  result = npmp_launcher.run_tracking(args.run_dir, args.skill, library=args.library,
                                      episode=args.episode, seed=args.seed, video_path=args.video)
  start = "same start state" if result["matched_initial_state"] else f"seed {result['seed']}"
  print(f"tracking {result['skill']} episode {result['episode']} "
        f"({'held out' if result['held_out'] else 'trained on'}, {start}): return "
        f"{result['tracked_return']:.1f} / reference {result['reference_return']:.1f} = "
        f"{result['return_fraction']:.3f} over {result['steps']} steps")
  if args.video:
    print(f"video: {args.video}")
  return 0


def _library(args) -> int:
  from priorax.envs import locomotion
  from priorax.experts import builder
  from priorax.launchers import overrides
  if args.mocap_dir:
    # The environment variable, not an argument: every later `loco:` build (evaluation, NPMP)
    # in this process finds the file the same way.
    os.environ[locomotion.MOCAP_DIR_VARIABLE] = args.mocap_dir
  config = builder.LibraryConfig(
      body=args.body, out=args.out, skills=builder.parse_skills(args.body, args.skills),
      steps=args.steps, episodes=args.episodes, rollout_noise=args.rollout_noise,
      action_repeat=args.action_repeat, seed=args.seed,
      agent_overrides=overrides.parse_assignments(args.overrides),
      checkpoint_every_s=args.checkpoint_every_s, log_every_s=args.log_every_s)
  library = builder.build_library(config)
  print(f"library {library.path} ({library.body}, {len(library.skills)} skills):")
  print(builder.describe(library))
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
  from priorax.experts import library as expert_library
  from priorax.replay import episodes
  from priorax.utils import checkpointing
  bad_input = (overrides.ConfigError, episodes.DatasetError, agent_registry.UnknownAgentError,
               expert_library.LibraryError, env_registry.UnknownEnvironmentError,
               checkpointing.CheckpointError, local.RunDirectoryError,
               rendering.RenderingUnavailableError)
  command = {"train": _train, "launch": _launch, "evaluate": _evaluate, "distill": _distill,
             "library": _library, "npmp": _npmp, "npmp-track": _npmp_track,
             "list": _list}[args.command]
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
