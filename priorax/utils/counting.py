"""A thread-safe hierarchical counter (Acme's `Counter`): actor, learner and evaluator share one
parent so every log line carries all the step counts."""

import threading
from typing import Dict, Mapping, Optional


class Counter:
  """Counts named quantities; a child with `prefix` increments `<prefix>_<name>` in its parent."""

  def __init__(self, parent: Optional["Counter"] = None, prefix: str = ""):
    self._parent = parent
    self._prefix = prefix
    self._counts: Dict[str, float] = {}
    self._lock = threading.Lock()

  def increment(self, **counts: float) -> Dict[str, float]:
    """Adds the given amounts and returns all counts (the root's, with every prefix)."""
    with self._lock:
      for name, value in counts.items():
        self._counts[name] = self._counts.get(name, 0) + value
    if self._parent is not None:
      return self._parent.increment(**{self._full(name): value for name, value in counts.items()})
    return self.get_counts()

  def get_counts(self) -> Dict[str, float]:
    if self._parent is not None:
      return self._parent.get_counts()
    with self._lock:
      return dict(self._counts)

  def get(self, name: str) -> float:
    """One count of this counter (prefix applied when it has a parent)."""
    return self.get_counts().get(self._full(name), 0)

  def save(self) -> Mapping[str, float]:
    with self._lock:
      return dict(self._counts)

  def restore(self, state: Mapping[str, float]):
    with self._lock:
      self._counts = dict(state)

  def _full(self, name: str) -> str:
    return f"{self._prefix}_{name}" if self._prefix else name
