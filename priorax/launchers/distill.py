"""The distillation launcher: expert rollouts → labelled states in Reverb → the student's learner.

One process with an embedded Reverb server, in rounds. Each round collects episodes (the expert
acting with noise; in later DAgger rounds the student or DAgger's mixture), has the expert label
the states visited and, for APC, Naive ABC and LFPC, M synthetic states around each, writes them
to the replay table, then runs the round's learner steps on everything stored so far. BC, APC,
Naive ABC and LFPC have one round of K rollouts; DAgger has K − k + 1 (k expert rollouts, then one
rollout per round).

The run directory follows `priorax train`'s (`launchers.local`): config.json, CSV and TensorBoard
logs, checkpoints/ (learner state, counters, collection key), replay/ (Reverb checkpoints taken
with every learner checkpoint, so no data is collected twice), curve.png (evaluation return
against learner steps), summary.json. Launching again on the same directory resumes; Ctrl-C
writes a final checkpoint first. The student's checkpoint holds `policy_params` in the layout of
a `kl_svg0` policy, so the run directory serves as a fixed prior (`agents.saved_policy`).
"""

import dataclasses
import json
import os
from typing import Any, Callable, Dict, List, NamedTuple

import dm_env
import jax
import numpy as np
import reverb

from priorax import core
from priorax import replay
from priorax import specs
from priorax.agents import actors
from priorax.agents.cloning import acting
from priorax.agents.cloning import augmentation
from priorax.agents.cloning import builder as builder_lib
from priorax.agents.cloning import experts as experts_lib
from priorax.agents.kl_svg0 import networks as kl_svg0_networks
from priorax.launchers import evaluation
from priorax.launchers import local
from priorax.loop import EnvironmentLoop
from priorax.utils import checkpointing
from priorax.utils import counting
from priorax.utils import loggers
from priorax.utils import plotting

AGENT = "cloning"
# States labelled per jitted call of the expert (bounds its activations' memory).
_LABEL_CHUNK = 1024


@dataclasses.dataclass(frozen=True)
class DistillConfig:
  """What a distillation run needs.

  Attributes:
    builder: the `CloningBuilder` (its config names the method).
    expert: the expert to distil.
    environment_name: recorded in the run directory.
    environment_factory: seed -> environment.
    run_dir: where logs, checkpoints and plots go.
    rollouts: K, the rollouts of the whole run (expert and, for DAgger, student ones).
    seed: seeds the student, the collection noise, the synthetic states and the environments.
    action_repeat: recorded, and turns agent steps into environment steps in the summary.
    eval_every: learner steps between evaluations of the student.
    eval_episodes: episodes per evaluation (the final one too).
    eval_noise: std of the Gaussian noise on the student's mean action when evaluated.
    checkpoint_every_s: seconds between periodic checkpoints (also taken after every collection
      and at the end).
    log_every_s: seconds between progress lines and learner log rows.
    run_description: extra JSON-able fields written to config.json.
    agent: recorded in config.json; "cloning".
  """

  builder: builder_lib.CloningBuilder
  expert: experts_lib.Expert
  environment_name: str
  environment_factory: Callable[[int], dm_env.Environment]
  run_dir: str
  rollouts: int
  seed: int = 0
  action_repeat: int = 1
  eval_every: int = 1_000
  eval_episodes: int = 50
  eval_noise: float = 0.2
  checkpoint_every_s: float = 300.0
  log_every_s: float = 5.0
  run_description: Dict[str, Any] = dataclasses.field(default_factory=dict)
  agent: str = AGENT

  def __post_init__(self):
    for name in ("rollouts", "action_repeat", "eval_every", "eval_episodes"):
      if getattr(self, name) < 1:
        raise ValueError(f"{name}={getattr(self, name)} must be >= 1")
    if self.eval_noise < 0:
      raise ValueError(f"eval_noise={self.eval_noise} must be >= 0")
    if self.checkpoint_every_s <= 0 or self.log_every_s <= 0:
      raise ValueError("checkpoint_every_s and log_every_s must be > 0")


class Round(NamedTuple):
  """One collection round: `episodes` rollouts acted with expert probability `beta`, then the
  learner steps up to `updates_until` in total."""

  episodes: int
  beta: float
  updates_until: int


def make_rounds(config, rollouts: int) -> List[Round]:
  """The collection schedule of a `CloningConfig` for a budget of K rollouts (module docstring)."""
  if config.method != "dagger":
    return [Round(rollouts, 1.0, config.num_updates)]
  if config.dagger_expert_rollouts > rollouts:
    raise core.ConfigError(f"dagger_expert_rollouts={config.dagger_expert_rollouts} exceeds "
                           f"--rollouts {rollouts}")
  plan = [(config.dagger_expert_rollouts, 1.0)]
  plan += [(1, config.dagger_beta)] * (rollouts - config.dagger_expert_rollouts)
  # The learner steps are spread evenly over the rounds (the last takes the remainder).
  per_round = config.num_updates // len(plan)
  return [Round(episodes, beta, config.num_updates if i == len(plan) - 1 else per_round * (i + 1))
          for i, (episodes, beta) in enumerate(plan)]


def check_expert(expert: experts_lib.Expert, environment_spec: specs.EnvironmentSpec) -> None:
  """Raises ConfigError unless the expert acts in this environment (action size, observations)."""
  action_size = int(environment_spec.actions.shape[-1])
  if expert.action_size != action_size:
    raise core.ConfigError(f"expert {expert.name!r} has {expert.action_size} actions; the "
                           f"environment has {action_size}")
  missing = sorted(set(expert.observation_keys or ()) - set(environment_spec.observations))
  if missing:
    raise core.ConfigError(f"expert {expert.name!r} reads observation keys {missing} that the "
                           f"environment lacks; it has {sorted(environment_spec.observations)}")
  try:
    expert.distribution(kl_svg0_networks.dummy_observation(environment_spec))
  except (ValueError, TypeError) as e:
    raise core.ConfigError(f"expert {expert.name!r} does not fit the environment's observations "
                           f"({e})") from None


def evaluate_policy(environment: dm_env.Environment, policy, params, key,
                    episodes: int) -> np.ndarray:
  """Returns of `episodes` episodes of `policy(params, key, obs)` (e.g. a noisy expert)."""
  actor = actors.GenericActor(policy, actors.VariableClient(
      evaluation.StaticVariables({"policy": params}), "policy"), key)
  results = EnvironmentLoop(environment, actor, label="evaluator",
                            should_update=False).run(num_episodes=episodes)
  return np.asarray([r["episode_return"] for r in results])


def _check_same_run(run_dir: str, identity: Dict[str, Any]) -> None:
  """Raises RunDirectoryError if `run_dir` holds a run of another expert, budget or repeat
  (`local.prepare_run_dir` checks the agent, env, seed and config)."""
  path = os.path.join(run_dir, local.CONFIG_FILE)
  if not os.path.exists(path):
    return
  try:
    with open(path) as f:
      saved = json.load(f)
  except (OSError, json.JSONDecodeError) as e:
    raise local.RunDirectoryError(f"{path} is unreadable ({e}); use a new --run-dir") from None
  differing = [f"{k}: saved {saved.get(k)!r}, now {v!r}" for k, v in identity.items()
               if saved.get(k) != v]
  if differing:
    raise local.RunDirectoryError(f"run directory {run_dir} holds a different distillation "
                                  f"({'; '.join(differing)}); use a new --run-dir")


def _physics_state_fn(environment: dm_env.Environment):
  physics = environment.physics  # Wrappers forward attributes to the dm_control environment.
  return lambda: np.array(physics.get_state())


def run_distillation(config: DistillConfig) -> Dict[str, Any]:
  """Distils (or resumes distilling) the expert; returns the summary (also in summary.json)."""
  identity = {"expert": config.expert.name, "rollouts": config.rollouts,
              "action_repeat": config.action_repeat}
  _check_same_run(config.run_dir, identity)
  config = dataclasses.replace(config, run_description={**config.run_description, **identity})
  local.prepare_run_dir(config)
  run_dir, builder = config.run_dir, config.builder
  c = builder.config
  environment = config.environment_factory(config.seed)
  environment_spec = specs.make_environment_spec(environment)
  check_expert(config.expert, environment_spec)
  networks = builder.make_networks(environment_spec)
  rounds = make_rounds(c, config.rollouts)
  learner_key, collect_key, evaluator_key, augment_key = jax.random.split(
      jax.random.PRNGKey(config.seed), 4)

  checkpointer = checkpointing.Checkpointer(os.path.join(run_dir, "checkpoints"))
  saved = checkpointer.load_latest()  # Read first: a corrupt checkpoint fails before any work.
  replay_dir = os.path.join(run_dir, "replay")
  server = replay.make_server(builder.make_replay_tables(environment_spec),
                              checkpoint_dir=replay_dir)
  client = reverb.Client(f"localhost:{server.port}")
  logger_factory = loggers.make_run_logger_factory(
      run_dir, step_key="learner_steps", period_s={"learner": config.log_every_s})
  counter = counting.Counter()
  iterator = builder.make_dataset_iterator(f"localhost:{server.port}")
  learner = builder.make_learner(networks, iterator, learner_key,
                                 counter=counting.Counter(counter, "learner"),
                                 logger=logger_factory("learner"))
  if saved is not None:
    local.restore_learner_state(learner, saved["learner_state"], checkpointer.latest())
    counter.restore(saved["counts"])
    collect_key = saved["collect_key"]
    print(f"[distill] resumed from {checkpointer.latest()}: {int(counter.get('rounds'))} of "
          f"{len(rounds)} rounds collected, {int(counter.get('learner_steps')):,} learner steps, "
          f"replay holds {local.replay_size(client):,} items", flush=True)

  recorder = acting.StateRecorder(_physics_state_fn(environment) if c.perturb_physics else None)
  adder = builder.make_adder(client)
  labeller = builder.make_labeller(config.expert)
  collectors = {}  # beta -> (actor, loop), made on first use.
  eval_actor = builder.make_actor(builder.make_policy(networks, config.eval_noise), learner,
                                  evaluator_key)
  eval_environment = config.environment_factory(config.seed + 1_000_003)
  eval_loop = EnvironmentLoop(eval_environment, eval_actor, counter=counting.Counter(),
                              label="evaluator", should_update=False)
  eval_logger = logger_factory("evaluator")
  total_updates = rounds[-1].updates_until

  def save_checkpoint():
    learner.check_finite()  # Never overwrite a good checkpoint with a diverged state.
    path = checkpointer.save(int(counter.get("learner_steps")), {
        "learner_state": learner.save()._asdict(),
        "counts": counter.save(),
        "collect_key": np.asarray(collect_key),
    })
    local.checkpoint_replay(client, replay_dir)
    return path

  def evaluate():
    results = eval_loop.run(num_episodes=config.eval_episodes)
    returns = [r["episode_return"] for r in results]
    row = {"learner_steps": counter.get("learner_steps"), "actor_steps": counter.get("actor_steps"),
           "episode_return": float(np.mean(returns)), "episode_return_std": float(np.std(returns)),
           "episodes": len(returns)}
    eval_logger.write(row)
    plotting.plot_learning_curve(
        os.path.join(run_dir, "logs", "evaluator.csv"), os.path.join(run_dir, local.CURVE_FILE),
        f"{c.method} student of {config.environment_name}", x_key="learner_steps",
        x_label="learner steps")
    print(f"[distill] learner {int(row['learner_steps']):,}/{total_updates:,} updates | "
          f"eval return {row['episode_return']:.1f} ± {row['episode_return_std']:.1f} "
          f"({len(returns)} episodes, noise {config.eval_noise})", flush=True)
    return row

  def collect(index: int, plan: Round):
    nonlocal collect_key
    if plan.beta not in collectors:
      actor = builder.make_actor(builder.make_collection_policy(networks, config.expert,
                                                                plan.beta),
                                 learner, collect_key, recorder)
      collectors[plan.beta] = (actor, EnvironmentLoop(environment, actor, counter=counter,
                                                      logger=logger_factory("actor"),
                                                      label="actor"))
    actor, loop = collectors[plan.beta]
    actor.key = collect_key
    loop.run(num_episodes=plan.episodes)
    collect_key = actor.key
    observations, physics_states = recorder.take()
    synthetic = None
    if c.group_size > 1:
      if c.perturb_physics:
        synthetic = augmentation.perturb_physics(
            environment, np.random.default_rng([config.seed, index]), physics_states,
            c.perturbation_scale, c.num_perturbations)
      else:
        synthetic = augmentation.perturb_observations(
            jax.random.fold_in(augment_key, index), observations,
            augmentation.data_std(observations), c.perturbation_scale, c.num_perturbations)
    count = len(jax.tree_util.tree_leaves(observations)[0])
    for start in range(0, count, _LABEL_CHUNK):
      chunk = lambda tree: jax.tree_util.tree_map(
          lambda x: x[start:start + _LABEL_CHUNK], tree)  # pylint: disable=cell-var-from-loop
      adder.add_batch(labeller(chunk(observations),
                               None if synthetic is None else chunk(synthetic)))
    counter.increment(rounds=1, demonstration_items=count)
    print(f"[distill] round {index + 1}/{len(rounds)}: {plan.episodes} rollouts "
          f"(expert probability {plan.beta}), {count:,} states × {c.group_size} in replay; "
          f"{int(counter.get('actor_steps')):,} agent steps so far", flush=True)

  periodic = local.PeriodicCheckpoint(save_checkpoint, config.checkpoint_every_s)
  with local.Interruptible() as block:
    for index, plan in enumerate(rounds):
      if index >= counter.get("rounds"):
        collect(index, plan)
        periodic.save()
      while counter.get("learner_steps") < plan.updates_until:
        learner.step()
        steps = int(counter.get("learner_steps"))
        if steps % config.eval_every == 0 and steps < total_updates:
          evaluate()
        periodic.maybe_save()

  local.end_learner_run("distill", save_checkpoint, iterator, server,
                        interrupted=block.interrupted,
                        learner_steps=int(counter.get("learner_steps")))

  final = evaluate()
  counts = counter.get_counts()
  summary = {
      "agent": AGENT,
      "method": c.method,
      "env": config.environment_name,
      "seed": config.seed,
      "expert": config.expert.name,
      "rollouts": config.rollouts,
      "actor_steps": int(counts.get("actor_steps", 0)),
      "env_steps": int(counts.get("actor_steps", 0)) * config.action_repeat,
      "demonstration_items": int(counts.get("demonstration_items", 0)),
      "learner_steps": int(counts.get("learner_steps", 0)),
      "student_params": networks.num_params,
      "final_eval_return": final["episode_return"],
      "final_eval_return_std": final["episode_return_std"],
      "eval_episodes": final["episodes"],
      "eval_noise": config.eval_noise,
  }
  with open(os.path.join(run_dir, local.SUMMARY_FILE), "w") as f:
    json.dump(summary, f, indent=2)
  return summary
