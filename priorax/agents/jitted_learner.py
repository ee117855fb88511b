"""The loop every priorax learner shares: jitted updates per `step`, throttled logging, a
non-finite check that costs no host sync per step, and save/restore of the whole state."""

import time
from typing import Any, Callable, Iterator, List, Sequence

import jax
import jax.numpy as jnp

from priorax import core
from priorax.utils import counting
from priorax.utils import loggers

# `first_nonfinite_step` while every update so far had finite losses.
NO_NONFINITE_STEP = -1


def scan_updates(update_step: Callable[[Any, Any], Any]) -> Callable[[Any, Sequence[Any]], Any]:
  """`updates(state, batches) -> (state, metrics)`: `update_step` applied to each of the batches in
  turn inside one jitted call (`lax.scan`), with the last update's metrics.

  Each dispatch of a small update costs the host about a millisecond, which caps an accelerator
  learner near a thousand updates/s whatever its size (benchmarks/learner_accelerator.py); several
  updates per dispatch lift that cap (Acme's `num_sgd_steps_per_step`). The result equals that
  many single steps on the same batches.
  """

  def updates(state, batches):
    stacked = jax.tree.map(lambda *leaves: jnp.stack(leaves), *batches)
    state, metrics = jax.lax.scan(update_step, state, stacked)
    return state, jax.tree.map(lambda leaf: leaf[-1], metrics)

  return jax.jit(updates)


class JittedLearner(core.Learner):
  """A learner owning `_state` (a NamedTuple with `first_nonfinite_step`) and a jitted
  `_update_step(state, batch) -> (state, metrics)` fed by `_iterator`.

  Subclasses build those in `__init__` (after calling `super().__init__`) and say which
  variables they serve in `_variables`. With `num_sgd_steps_per_step` = K > 1 each `step` takes K
  batches and makes K updates in one dispatch (`scan_updates`); the counter's `steps` counts
  updates either way.
  """

  def __init__(self, iterator: Iterator[Any], counter: counting.Counter | None,
               logger: loggers.Logger | None, num_sgd_steps_per_step: int = 1):
    if num_sgd_steps_per_step < 1:
      raise ValueError(f"num_sgd_steps_per_step={num_sgd_steps_per_step} must be >= 1")
    self._iterator = iterator
    self._counter = counter or counting.Counter()
    self._logger = logger or loggers.NoOpLogger()
    self._num_sgd_steps_per_step = num_sgd_steps_per_step
    self._timestamp = None
    self._state = None
    self._update_step = None
    self._scanned_updates = None

  def _variables(self) -> dict:
    raise NotImplementedError

  def step(self):
    if self._num_sgd_steps_per_step == 1:
      self._state, metrics = self._update_step(self._state, next(self._iterator))
    else:
      if self._scanned_updates is None:
        self._scanned_updates = scan_updates(self._update_step)
      batches = [next(self._iterator) for _ in range(self._num_sgd_steps_per_step)]
      self._state, metrics = self._scanned_updates(self._state, batches)
    now = time.time()
    elapsed = now - self._timestamp if self._timestamp else 0.0
    self._timestamp = now
    counts = self._counter.increment(steps=self._num_sgd_steps_per_step, walltime=elapsed)
    # The logger throttles writes; metrics are only pulled to the host when it writes.
    if self._logger.wants_write():
      self.check_finite()
      self._logger.write({**jax.device_get(metrics), **counts})

  def check_finite(self):
    """Raises core.NonFiniteLossError if any update so far produced a non-finite loss."""
    step = int(self._state.first_nonfinite_step)
    if step != NO_NONFINITE_STEP:
      raise core.NonFiniteLossError(step)

  def get_variables(self, names: Sequence[str]) -> List[Any]:
    variables = self._variables()
    return [variables[name] for name in names]

  def save(self):
    return jax.device_get(self._state)

  def restore(self, state):
    self._state = jax.device_put(state)
