"""The environment loop (Acme's `EnvironmentLoop`): an actor interacting with an environment.

Counts `actor_steps` and `actor_episodes` (through a shared counter) and logs, per episode, its
return, length and the loop's steps per second.
"""

import time
from typing import Optional

import dm_env
import numpy as np

from priorax import core
from priorax.utils import counting
from priorax.utils import loggers


class EnvironmentLoop(core.Worker):
  """Runs episodes of `actor` in `environment`.

  `should_update` controls whether the actor refreshes its parameters each step (evaluators do it
  once per episode instead). `label` prefixes the counts ("actor", "evaluator").
  """

  def __init__(self, environment: dm_env.Environment, actor: core.Actor, *,
               counter: Optional[counting.Counter] = None,
               logger: Optional[loggers.Logger] = None, label: str = "actor",
               should_update: bool = True):
    self._environment = environment
    self._actor = actor
    self._counter = counter or counting.Counter()
    self._logger = logger or loggers.NoOpLogger()
    self._label = label
    self._should_update = should_update

  def run_episode(self, max_steps: Optional[int] = None) -> dict:
    """Runs one episode, cut short after `max_steps` steps if given; returns its statistics.

    A cut episode is counted in `<label>_steps` but not in `<label>_episodes` and not logged.
    """
    start = time.time()
    episode_return, episode_steps = 0.0, 0
    timestep = self._environment.reset()
    self._actor.observe_first(timestep)
    if not self._should_update:
      self._actor.update(wait=True)
    steps_key = f"{self._label}_steps"
    while not timestep.last() and (max_steps is None or episode_steps < max_steps):
      action = self._actor.select_action(timestep.observation)
      timestep = self._environment.step(action)
      self._actor.observe(action, next_timestep=timestep)
      if self._should_update:
        self._actor.update()
      episode_steps += 1
      reward = timestep.reward  # float() of a 0-d array is its value, without np.sum's cost.
      episode_return += float(reward) if np.ndim(reward) == 0 else float(np.sum(reward))
      # Counted per step, so the learner's log rows carry the current environment step.
      self._counter.increment(**{steps_key: 1})
    counts = self._counter.increment(**{f"{self._label}_episodes": int(timestep.last())})
    duration = time.time() - start
    # The last reward tells whether a task ended in its goal state (a success, e.g. manipulation).
    result = {"episode_return": episode_return, "episode_length": episode_steps,
              "last_reward": float(np.sum(timestep.reward)) if episode_steps else 0.0,
              "steps_per_second": episode_steps / max(duration, 1e-9), **counts}
    if timestep.last():
      self._logger.write(result)
    return result

  def run(self, num_episodes: Optional[int] = None, num_steps: Optional[int] = None) -> list:
    """Runs `num_episodes` episodes, or exactly `num_steps` steps, whichever ends first."""
    if num_episodes is None and num_steps is None:
      raise ValueError("give num_episodes or num_steps")
    results, steps = [], 0
    while ((num_episodes is None or len(results) < num_episodes)
           and (num_steps is None or steps < num_steps)):
      result = self.run_episode(None if num_steps is None else num_steps - steps)
      steps += result["episode_length"]
      results.append(result)
    return results
