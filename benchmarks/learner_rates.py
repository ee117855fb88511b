"""Synthetic batches of a task's shapes and the timer of learner updates, shared by the throughput
and accelerator benchmarks.

Imports neither Reverb nor dm_control, so `benchmarks/learner_accelerator.py` runs on a GPU
machine that has only JAX and haiku.
"""

import time
from typing import Callable, Optional

import jax
import numpy as np

from priorax import core
from priorax import specs
from priorax import types

WARMUP_UPDATES = 3


def rate(work: Callable[[], int], seconds: float,
         finish: Optional[Callable[[], None]] = None) -> float:
  """Calls `work` (it returns how many units it did) until `seconds` have passed; units per second.

  `finish` runs inside the timed interval, e.g. to wait for work dispatched asynchronously.
  """
  done, start = 0, time.perf_counter()
  while time.perf_counter() - start < seconds:
    done += work()
  if finish is not None:
    finish()
  return done / (time.perf_counter() - start)


def random_like(spec, rng: np.random.Generator, leading: tuple = ()) -> np.ndarray:
  """An array of `spec`'s dtype and shape (after `leading`), uniform in [-1, 1]."""
  return rng.uniform(-1.0, 1.0, leading + tuple(spec.shape)).astype(spec.dtype)


def synthetic_batch(environment_spec: specs.EnvironmentSpec, batch_size: int,
                    rng: np.random.Generator) -> types.Transition:
  """A batch of random transitions with the shapes and dtypes the Reverb dataset yields."""
  leading = (batch_size,)

  def observation():
    return {k: random_like(s, rng, leading) for k, s in environment_spec.observations.items()}

  return types.Transition(
      observation=observation(),
      action=random_like(environment_spec.actions, rng, leading),
      reward=rng.uniform(0.0, 1.0, leading).astype(environment_spec.rewards.dtype),
      discount=np.full(leading, 0.99, environment_spec.discounts.dtype),
      next_observation=observation(),
      extras=())


def wait_for_learner(learner: core.Learner) -> None:
  """Blocks until every update dispatched so far has finished on its device."""
  jax.block_until_ready(learner.get_variables(["policy", "critic"]))


def measure_learner(learner: core.Learner, seconds: float) -> float:
  """Updates per second of `learner.step()`, after a warm-up that compiles the update."""
  for _ in range(WARMUP_UPDATES):  # A prefetching iterator also fills up meanwhile.
    learner.step()
  wait_for_learner(learner)

  def update():
    learner.step()
    return 1

  return rate(update, seconds, finish=lambda: wait_for_learner(learner))
