"""The offline launcher: one process, an embedded Reverb server holding a fixed dataset, no acting.

For builders with an offline dataset (`builder.offline`, e.g. `req` with `offline_dataset`): the
dataset's episodes are written once into the builder's replay table (as the same n-step
transitions the online adder stores), then the learner steps on batches from it, and the
deterministic policy is evaluated every `eval_every` learner steps. The experiment's step budget
(`max_actor_steps`) counts learner steps here; no environment step is ever stored.

The run directory is `launchers.local`'s: config.json, logs, curve.png (evaluation return against
learner steps), checkpoints/, replay/ (the loaded dataset is checkpointed with the learner, so a
resumed run does not load it again), summary.json.
Launching again on the same directory resumes; Ctrl-C or SIGTERM writes a final checkpoint first.
"""

import json
import os
from typing import Any, Dict

import jax
import numpy as np
import reverb

from priorax import replay
from priorax import specs
from priorax.launchers import local
from priorax.loop import EnvironmentLoop
from priorax.utils import checkpointing
from priorax.utils import counting
from priorax.utils import loggers


def run_offline(config: local.ExperimentConfig) -> Dict[str, Any]:
  """Trains (or resumes) an agent on its builder's offline dataset; returns the run summary."""
  local.prepare_run_dir(config)
  run_dir, builder = config.run_dir, config.builder
  environment = config.environment_factory(config.seed)
  environment_spec = specs.make_environment_spec(environment)
  networks = builder.make_networks(environment_spec)
  prior = builder.make_prior(environment_spec)
  # The same key split as the online launcher's, so learner initialisations agree.
  learner_key, _, evaluator_key = jax.random.split(jax.random.PRNGKey(config.seed), 3)

  checkpointer = checkpointing.Checkpointer(os.path.join(run_dir, "checkpoints"))
  saved = checkpointer.load_latest()
  replay_dir = os.path.join(run_dir, "replay")
  server = replay.make_server(builder.make_replay_tables(environment_spec),
                              checkpoint_dir=replay_dir)
  address = f"localhost:{server.port}"
  client = reverb.Client(address)
  if local.replay_size(client) == 0:
    steps = builder.load_dataset(client, environment_spec)
    print(f"[offline] loaded {steps:,} steps from {builder.config.offline_dataset}", flush=True)

  logger_factory = loggers.make_run_logger_factory(
      run_dir, period_s={"learner": config.log_every_s})
  counter = counting.Counter()
  iterator = builder.make_dataset_iterator(address)
  learner = builder.make_learner(networks, prior, iterator, learner_key, environment_spec,
                                 counter=counting.Counter(counter, "learner"),
                                 logger=logger_factory("learner"))
  eval_actor = builder.make_actor(builder.make_policy(networks, evaluation=True), learner,
                                  evaluator_key)
  if saved is not None:
    local.restore_learner_state(learner, saved["learner_state"], checkpointer.latest())
    counter.restore(saved["counts"])
    print(f"[offline] resumed from {checkpointer.latest()} at "
          f"{int(counter.get('learner_steps')):,} learner steps", flush=True)
  eval_environment = config.environment_factory(config.seed + 1_000_003)
  eval_loop = EnvironmentLoop(eval_environment, eval_actor, counter=counter, label="evaluator",
                              should_update=False)
  eval_logger = logger_factory("evaluator")

  def save_checkpoint():
    learner.check_finite()  # Never overwrite a good checkpoint with a diverged state.
    path = checkpointer.save(int(counter.get("learner_steps")), {
        "learner_state": learner.save()._asdict(), "counts": counter.save(),
        "actor_key": np.asarray(evaluator_key)})
    local.checkpoint_replay(client, replay_dir)
    return path

  def evaluate():
    returns = [r["episode_return"] for r in eval_loop.run(num_episodes=config.eval_episodes)]
    row = local.record_evaluation(config, eval_logger, returns, counter.get_counts(),
                                  x_key="learner_steps", x_label="learner steps")
    print(f"[offline] {int(row['learner_steps']):,}/{config.max_actor_steps:,} learner steps | "
          f"eval {row['episode_return']:.1f}", flush=True)
    return row

  periodic = local.PeriodicCheckpoint(save_checkpoint, config.checkpoint_every_s)
  with local.Interruptible() as block:
    while counter.get("learner_steps") < config.max_actor_steps:
      learner.step()
      steps = int(counter.get("learner_steps"))
      if steps % config.eval_every == 0 and steps < config.max_actor_steps:
        evaluate()
      periodic.maybe_save()
  local.end_learner_run("offline", save_checkpoint, iterator, server,
                        interrupted=block.interrupted,
                        learner_steps=int(counter.get("learner_steps")))

  final = evaluate()
  summary = {
      "agent": config.agent, "env": config.environment_name, "seed": config.seed,
      "offline_dataset": builder.config.offline_dataset, "actor_steps": 0,
      "learner_steps": int(counter.get("learner_steps")),
      "final_eval_return": final["episode_return"],
      "final_eval_return_std": final["episode_return_std"], "eval_episodes": final["episodes"],
  }
  with open(os.path.join(run_dir, local.SUMMARY_FILE), "w") as f:
    json.dump(summary, f, indent=2)
  return summary
