"""The loop every priorax learner shares: one jitted update per `step`, throttled logging, a
non-finite check that costs no host sync per step, and save/restore of the whole state."""

import time
from typing import Any, Iterator, List, Sequence

import jax

from priorax import core
from priorax.utils import counting
from priorax.utils import loggers

# `first_nonfinite_step` while every update so far had finite losses.
NO_NONFINITE_STEP = -1


class JittedLearner(core.Learner):
  """A learner owning `_state` (a NamedTuple with `first_nonfinite_step`) and a jitted
  `_update_step(state, batch) -> (state, metrics)` fed by `_iterator`.

  Subclasses build those in `__init__` (after calling `super().__init__`) and say which
  variables they serve in `_variables`.
  """

  def __init__(self, iterator: Iterator[Any], counter: counting.Counter | None,
               logger: loggers.Logger | None):
    self._iterator = iterator
    self._counter = counter or counting.Counter()
    self._logger = logger or loggers.NoOpLogger()
    self._timestamp = None
    self._state = None
    self._update_step = None

  def _variables(self) -> dict:
    raise NotImplementedError

  def step(self):
    batch = next(self._iterator)
    self._state, metrics = self._update_step(self._state, batch)
    now = time.time()
    elapsed = now - self._timestamp if self._timestamp else 0.0
    self._timestamp = now
    counts = self._counter.increment(steps=1, walltime=elapsed)
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
