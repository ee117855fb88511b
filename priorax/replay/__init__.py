"""Replay: Reverb tables and server, adders that write experience, iterators that feed learners.

Names are imported on first use (PEP 562), so `from priorax.replay import Step` or `prefetch`
loads neither TensorFlow nor Reverb: a learner process that only names these stays free of them
(DESIGN.md §3, §4). The other names import TensorFlow and Reverb, and `make_dataset*` configures
TensorFlow (see `priorax.replay.dataset`).
"""

import importlib
from typing import Any

# Public name -> the module that defines it.
_EXPORTS = {
    "NStepTransitionAdder": "priorax.replay.adders",
    "SequenceAdder": "priorax.replay.adders",
    "make_dataset": "priorax.replay.dataset",
    "make_dataset_iterator": "priorax.replay.dataset",
    "PrefetchingIterator": "priorax.replay.prefetching",
    "prefetch": "priorax.replay.prefetching",
    "checkpoint": "priorax.replay.tables",
    "make_server": "priorax.replay.tables",
    "make_uniform_table": "priorax.replay.tables",
    "Step": "priorax.replay.types",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
  if name not in _EXPORTS:
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
  value = getattr(importlib.import_module(_EXPORTS[name]), name)
  globals()[name] = value  # Later look-ups skip this function.
  return value


def __dir__() -> list[str]:
  return sorted(list(globals()) + __all__)
