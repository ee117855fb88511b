"""Evaluates a run directory's latest checkpoint: the deterministic policy for K episodes."""

import json
import os
from typing import Any, Dict, List, Optional, Sequence

import jax
import numpy as np

from priorax import core
from priorax import envs
from priorax import specs
from priorax.agents import registry
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


def evaluate_run(run_dir: str, *, episodes: int, seed: int,
                 video_path: Optional[str] = None) -> Dict[str, Any]:
  """Returns {"mean", "std", "returns", "actor_steps"} of the latest checkpoint's policy."""
  config_path = os.path.join(run_dir, local.CONFIG_FILE)
  try:
    with open(config_path) as f:
      run = json.load(f)
  except (OSError, json.JSONDecodeError) as e:
    raise checkpointing.CheckpointError(f"cannot read {config_path} ({e}); is {run_dir!r} a "
                                        f"priorax run directory?") from None
  entry = registry.get_agent(run["agent"])
  builder = entry.builder_class(overrides.apply_overrides(entry.config_class, {},
                                                          run["agent_config"]))
  checkpointer = checkpointing.Checkpointer(os.path.join(run_dir, "checkpoints"))
  saved = checkpointer.load_latest()
  if saved is None:
    raise checkpointing.CheckpointError(f"run directory {run_dir!r} has no checkpoint yet")
  environment = envs.make_environment(run["env"], seed,
                                      action_repeat=run.get("action_repeat", 1))
  networks = builder.make_networks(specs.make_environment_spec(environment))
  source = StaticVariables({"policy": saved["learner_state"]["policy_params"]})
  actor = builder.make_actor(builder.make_policy(networks, evaluation=True), source,
                             jax.random.PRNGKey(seed))
  results = EnvironmentLoop(environment, actor, label="evaluator",
                            should_update=False).run(num_episodes=episodes)
  returns = [r["episode_return"] for r in results]
  if video_path:
    from priorax.utils import video  # Rendering is optional: import only when asked.
    video.record_video(environment, actor.select_action, video_path)
  return {"mean": float(np.mean(returns)), "std": float(np.std(returns)), "returns": returns,
          "actor_steps": int(saved["counts"].get("actor_steps", 0))}
