"""Evaluates a run directory's latest checkpoint: the deterministic policy for K episodes."""

import json
import os
from typing import Any, Dict, List, Optional, Sequence

import jax
import numpy as np

from priorax import core
from priorax import envs
from priorax import specs
from priorax.agents import actors
from priorax.agents import registry
from priorax.agents import saved_policy
from priorax.agents.cloning import acting as cloning_acting
from priorax.launchers import local
from priorax.launchers import overrides
from priorax.loop import EnvironmentLoop
from priorax.utils import checkpointing


class StaticVariables(core.VariableSource):
  """Serves fixed parameters (a checkpoint's) to an actor."""

  def __init__(self, variables: Dict[str, Any]):
    self._variables = variables

  def get_variables(self, names: Sequence[str]) -> List[Any]:
    return [self._variables[name] for name in names]


def _agent_actor(run_dir: str, run: Dict[str, Any], environment, seed: int):
  """The evaluation actor of a registered agent's run and its latest checkpoint."""
  entry = registry.get_agent(run["agent"])
  builder = entry.builder_class(overrides.apply_overrides(entry.config_class, {},
                                                          run["agent_config"]))
  checkpointer = checkpointing.Checkpointer(os.path.join(run_dir, "checkpoints"))
  saved = checkpointer.load_latest()
  if saved is None:
    raise checkpointing.CheckpointError(f"run directory {run_dir!r} has no checkpoint yet")
  networks = builder.make_networks(specs.make_environment_spec(environment))
  source = StaticVariables({"policy": saved["learner_state"]["policy_params"]})
  actor = builder.make_actor(builder.make_policy(networks, evaluation=True), source,
                             jax.random.PRNGKey(seed))
  return actor, saved


def _student_actor(run_dir: str, seed: int):
  """The deterministic actor (tanh of the mean) of a distilled student (`priorax distill`)."""
  student = saved_policy.load_saved_policy(run_dir)
  policy = cloning_acting.make_policy(student.network.apply, noise=0.0)
  actor = actors.GenericActor(policy, actors.VariableClient(
      StaticVariables({"policy": student.params}), "policy"), jax.random.PRNGKey(seed))
  saved = checkpointing.Checkpointer(os.path.join(run_dir, "checkpoints")).load_latest()
  return actor, saved


def evaluate_run(run_dir: str, *, episodes: int, seed: int,
                 video_path: Optional[str] = None) -> Dict[str, Any]:
  """Returns {"mean", "std", "returns", "last_rewards", "actor_steps"} of the latest checkpoint's
  policy (`last_rewards`: each episode's final reward, which says whether it ended in success)."""
  config_path = os.path.join(run_dir, local.CONFIG_FILE)
  try:
    with open(config_path) as f:
      run = json.load(f)
  except (OSError, json.JSONDecodeError) as e:
    raise checkpointing.CheckpointError(f"cannot read {config_path} ({e}); is {run_dir!r} a "
                                        f"priorax run directory?") from None
  if run.get("agent") == "npmp":
    raise checkpointing.CheckpointError(
        f"{run_dir!r} holds motor primitives (priorax npmp), not a policy for one task: evaluate "
        f"them with `priorax npmp-track --run-dir {run_dir} --skill NAME`")
  if run.get("low_level"):  # A high level over NPMP motor primitives (`train --low-level`).
    from priorax.agents.npmp import acting as npmp_acting
    environment = npmp_acting.make_low_level_environment(
        run["env"], seed, run["low_level"], latent_repeat=run.get("action_repeat", 1))
  else:
    environment = envs.make_environment(run["env"], seed,
                                        action_repeat=run.get("action_repeat", 1))
  if run["agent"] == "cloning":
    actor, saved = _student_actor(run_dir, seed)
  else:
    actor, saved = _agent_actor(run_dir, run, environment, seed)
  results = EnvironmentLoop(environment, actor, label="evaluator",
                            should_update=False).run(num_episodes=episodes)
  returns = [r["episode_return"] for r in results]
  if video_path:
    from priorax.utils import video  # Rendering is optional: import only when asked.
    video.record_video(environment, actor.select_action, video_path)
  return {"mean": float(np.mean(returns)), "std": float(np.std(returns)), "returns": returns,
          "last_rewards": [r["last_reward"] for r in results],
          "actor_steps": int(saved["counts"].get("actor_steps", 0))}
