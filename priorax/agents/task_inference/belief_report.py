"""The belief's error against the step within an episode, for a `task_inference` run directory.

Humplik et al. 2019 (https://arxiv.org/abs/1905.06424, §5) show the belief sharpening as evidence
accrues within an episode: a belief that infers the task has a large error at the episode's first
step (only the prior is known) and a small one once the task has been found. The learner logs the
belief's error averaged over replayed states; this report measures it per step instead, by running
the run's latest checkpoint (evaluation policy, a = tanh(mean)) on fresh episodes and scoring the
belief q(task | h_t) at every decision t with `losses.belief_error` (‖μ − task‖, or the fraction of
wrong rows for one-hot descriptors).

Writes `logs/belief_error_by_step.csv` (step, mean and std over episodes, episodes) and
`belief_error_by_step.png` in the run directory.
"""

import csv
import json
import os
from typing import Any, Dict

import jax
import jax.numpy as jnp
import numpy as np

from priorax import envs
from priorax import specs
from priorax.agents.task_inference import config as config_lib
from priorax.agents.task_inference import losses
from priorax.agents.task_inference import networks as networks_lib
from priorax.networks import recurrent
from priorax.utils import checkpointing

CSV_FILE = os.path.join("logs", "belief_error_by_step.csv")
PLOT_FILE = "belief_error_by_step.png"
# Evaluation episodes get seeds apart from the training and evaluator environments'.
SEED_OFFSET = 2_000_003


def belief_errors_by_step(run_dir: str, num_episodes: int) -> np.ndarray:
  """The belief's error at every decision of `num_episodes` fresh episodes of the run's task.

  Returns:
    [episodes, T] errors, T the longest episode (shorter ones padded with NaN).

  Raises:
    checkpointing.CheckpointError: not a task_inference run, or no checkpoint yet.
    ValueError: num_episodes < 1, or a variant without a belief (rl2).
  """
  if num_episodes < 1:
    raise ValueError(f"num_episodes={num_episodes} must be >= 1")
  run, data = checkpointing.load_run(run_dir, field="run_dir", agent="task_inference")
  agent_config = {k: tuple(v) if isinstance(v, list) else v
                  for k, v in run["agent_config"].items()}
  config = config_lib.TaskInferenceConfig(**agent_config)
  environment = envs.make_environment(run["env"], int(run["seed"]) + SEED_OFFSET,
                                      action_repeat=int(run.get("action_repeat", 1)))
  environment_spec = specs.make_environment_spec(environment)
  networks = networks_lib.make_networks(environment_spec, config)
  if not networks.has_belief:
    raise ValueError(f"run_dir={run_dir!r} is a {config.variant!r} run, which has no belief")
  params = data["learner_state"]["policy_params"]

  @jax.jit
  def step(inputs: recurrent.CoreInput, state):
    batched_inputs, batched_state = jax.tree_util.tree_map(
        lambda x: jnp.expand_dims(x, 0), (inputs, state))
    features, next_state = networks.core.step(params["core"], batched_inputs, batched_state)
    outputs = networks.heads_apply(params["heads"], features, batched_inputs.observation)
    error = losses.belief_error(outputs.belief, batched_inputs.observation[networks_lib.TASK_KEY],
                                networks.categorical_task)
    action = jnp.tanh(outputs.policy.mean[0])
    return action, error[0], jax.tree_util.tree_map(lambda x: x[0], next_state)

  zeros = recurrent.zero_core_input(environment_spec)
  episodes = []
  for _ in range(num_episodes):
    timestep = environment.reset()
    state = networks.core.initial_state(None)
    prev_action, prev_reward, errors = zeros.prev_action, zeros.prev_reward, []
    while True:
      inputs = recurrent.CoreInput(timestep.observation, prev_action, prev_reward)
      action, error, state = step(inputs, state)
      errors.append(float(error))
      action = np.asarray(action)
      timestep = environment.step(action)
      if timestep.last():
        break
      prev_action, prev_reward = action, np.asarray(timestep.reward, zeros.prev_reward.dtype)
    episodes.append(errors)
  length = max(len(e) for e in episodes)
  return np.array([e + [np.nan] * (length - len(e)) for e in episodes])


def write_belief_report(run_dir: str, num_episodes: int) -> Dict[str, Any]:
  """Measures `belief_errors_by_step` and writes its CSV and plot into the run directory.

  Returns:
    {"csv": path, "plot": path, "first_step_error": mean at t = 0, "last_step_error": mean at
    the last step}.
  """
  errors = belief_errors_by_step(run_dir, num_episodes)
  mean, std = np.nanmean(errors, 0), np.nanstd(errors, 0)
  counts = np.sum(~np.isnan(errors), 0)
  csv_path = os.path.join(run_dir, CSV_FILE)
  os.makedirs(os.path.dirname(csv_path), exist_ok=True)
  with open(csv_path, "w", newline="") as f:
    writer = csv.writer(f)
    writer.writerow(["step", "belief_error", "belief_error_std", "episodes"])
    writer.writerows(zip(range(len(mean)), mean.tolist(), std.tolist(), counts.tolist()))

  # Imported here, as in the launcher: matplotlib is slow to import and only this plot needs it.
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top

  with open(os.path.join(run_dir, "config.json")) as f:
    run = json.load(f)
  steps = np.arange(len(mean))
  fig, ax = plt.subplots(figsize=(6, 4))
  ax.plot(steps, mean)
  ax.fill_between(steps, mean - std, mean + std, alpha=0.2)
  ax.set_xlabel("decision within the episode")
  ax.set_ylabel("belief error")
  ax.set_title(f"{run['agent_config']['variant']} on {run['env']} ({num_episodes} episodes)")
  ax.grid(alpha=0.3)
  fig.tight_layout()
  plot_path = os.path.join(run_dir, PLOT_FILE)
  fig.savefig(plot_path, dpi=100)
  plt.close(fig)
  return {"csv": csv_path, "plot": plot_path, "first_step_error": float(mean[0]),
          "last_step_error": float(mean[-1])}
