"""Loggers (Acme's `Logger.write(dict)` interface): CSV, TensorBoard, terminal, and a dispatcher.

A `LoggerFactory(label)` gives each component (actor, learner, evaluator) its own logger, so the
learner does no file I/O of its own. `TimeFilter` throttles writes; callers ask `wants_write()` first
so they only pull metrics from the device when something will be written.
"""

import abc
import csv
import math
import os
import sys
import threading
import time
from typing import Any, Callable, Dict, List, Mapping, Optional

import numpy as np

LoggingData = Mapping[str, Any]


class Logger(abc.ABC):

  @abc.abstractmethod
  def write(self, data: LoggingData) -> None:
    """Writes one row of scalars."""

  def wants_write(self) -> bool:
    """Whether a `write` now would be recorded (lets callers skip device→host copies)."""
    return True

  def close(self) -> None:
    pass


LoggerFactory = Callable[[str], Logger]


def _scalar(value: Any) -> Any:
  value = np.asarray(value)
  return value.item() if value.size == 1 else value.tolist()


class NoOpLogger(Logger):

  def write(self, data: LoggingData) -> None:
    del data

  def wants_write(self) -> bool:
    return False


class CSVLogger(Logger):
  """Appends rows to a CSV file; new keys after the first row are rejected by a header rewrite."""

  def __init__(self, path: str):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    self._path = path
    self._fields: Optional[List[str]] = None
    if os.path.exists(path) and os.path.getsize(path) > 0:
      with open(path, newline="") as f:
        self._fields = next(csv.reader(f), None)
    self._file = open(path, "a", newline="")
    self._lock = threading.Lock()

  def write(self, data: LoggingData) -> None:
    row = {k: _scalar(v) for k, v in data.items()}
    with self._lock:
      if self._fields is None or not set(row) <= set(self._fields):
        self._rewrite_with_fields(sorted(set(row) | set(self._fields or [])))
      csv.DictWriter(self._file, self._fields).writerow(row)
      self._file.flush()

  def _rewrite_with_fields(self, fields: List[str]) -> None:
    self._file.close()
    rows = []
    if os.path.exists(self._path) and self._fields:
      with open(self._path, newline="") as f:
        rows = list(csv.DictReader(f))
    with open(self._path, "w", newline="") as f:
      writer = csv.DictWriter(f, fields)
      writer.writeheader()
      writer.writerows(rows)
    self._fields = fields
    self._file = open(self._path, "a", newline="")

  def close(self) -> None:
    self._file.close()


class TensorBoardLogger(Logger):
  """Writes scalars as TensorBoard summaries, stepped by `step_key` (e.g. "actor_steps")."""

  def __init__(self, logdir: str, step_key: str):
    import tensorflow as tf  # Only this logger needs TF; the learner never imports it.
    self._tf = tf
    self._writer = tf.summary.create_file_writer(logdir)
    self._step_key = step_key

  def write(self, data: LoggingData) -> None:
    step = int(data.get(self._step_key, 0))
    with self._writer.as_default():
      for key, value in data.items():
        value = np.asarray(value)
        if value.size == 1 and np.issubdtype(value.dtype, np.number):
          self._tf.summary.scalar(key, float(value), step=step)
    self._writer.flush()

  def close(self) -> None:
    self._writer.close()


class TerminalLogger(Logger):
  """Prints one status line per write: `[label] key = value | ...`."""

  def __init__(self, label: str, keys: Optional[List[str]] = None, stream=None):
    self._label = label
    self._keys = keys
    self._stream = stream or sys.stdout

  def write(self, data: LoggingData) -> None:
    keys = self._keys or sorted(data)
    parts = []
    for key in keys:
      if key in data:
        value = _scalar(data[key])
        if isinstance(value, float):
          value = f"{value:.4g}" if math.isfinite(value) else str(value)
        parts.append(f"{key} = {value}")
    print(f"[{self._label}] " + " | ".join(parts), file=self._stream, flush=True)


class Dispatcher(Logger):
  """Writes to several loggers."""

  def __init__(self, loggers: List[Logger]):
    self._loggers = loggers

  def write(self, data: LoggingData) -> None:
    for logger in self._loggers:
      logger.write(data)

  def close(self) -> None:
    for logger in self._loggers:
      logger.close()


class TimeFilter(Logger):
  """Forwards at most one write every `period_s` seconds."""

  def __init__(self, logger: Logger, period_s: float):
    self._logger = logger
    self._period_s = period_s
    self._last = -math.inf

  def wants_write(self) -> bool:
    return time.time() - self._last >= self._period_s

  def write(self, data: LoggingData) -> None:
    if self.wants_write():
      self._last = time.time()
      self._logger.write(data)

  def close(self) -> None:
    self._logger.close()


def make_run_logger_factory(run_dir: str, *, step_key: str = "actor_steps",
                            period_s: Dict[str, float] = None,
                            tensorboard: bool = True) -> LoggerFactory:
  """CSV under `run_dir/logs/<label>.csv` and TensorBoard under `run_dir/tensorboard/<label>`."""
  period_s = period_s or {}

  def factory(label: str) -> Logger:
    sinks: List[Logger] = [CSVLogger(os.path.join(run_dir, "logs", f"{label}.csv"))]
    if tensorboard:
      sinks.append(TensorBoardLogger(os.path.join(run_dir, "tensorboard", label), step_key))
    logger = Dispatcher(sinks)
    period = period_s.get(label, 0.0)
    return TimeFilter(logger, period) if period > 0 else logger

  return factory
