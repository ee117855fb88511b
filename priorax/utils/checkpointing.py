"""Versioned checkpoint files, written atomically.

A checkpoint is one pickle of plain data (numpy pytrees, dicts, numbers) with a format version, so an
incompatible file fails with a clear message instead of a confusing unpickling error. Files are
written to a temporary name and renamed, so a crash mid-write (or kill -9) never leaves a torn
latest checkpoint; the newest `keep` files are kept.
"""

import glob
import os
import pickle
import re
from typing import Any, Dict, Optional

FORMAT_VERSION = 1
_PATTERN = re.compile(r"ckpt_(\d+)\.pkl$")


class CheckpointError(ValueError):
  """A checkpoint is missing, unreadable, corrupt, or of another format version."""


class Checkpointer:
  """Saves and loads `ckpt_<step>.pkl` files in one directory."""

  def __init__(self, directory: str, keep: int = 2):
    if keep < 1:
      raise ValueError(f"keep={keep} must be >= 1")
    self._directory = directory
    self._keep = keep

  @property
  def directory(self) -> str:
    return self._directory

  def save(self, step: int, payload: Dict[str, Any]) -> str:
    os.makedirs(self._directory, exist_ok=True)
    path = os.path.join(self._directory, f"ckpt_{step:010d}.pkl")
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
      pickle.dump({"format_version": FORMAT_VERSION, "step": step, **payload}, f,
                  protocol=pickle.HIGHEST_PROTOCOL)
      f.flush()
      os.fsync(f.fileno())
    os.replace(tmp, path)
    for old in self.list()[:-self._keep]:
      os.remove(old)
    return path

  def list(self):
    """Checkpoint paths, oldest first."""
    paths = [p for p in glob.glob(os.path.join(self._directory, "ckpt_*.pkl")) if _PATTERN.search(p)]
    return sorted(paths, key=lambda p: int(_PATTERN.search(p).group(1)))

  def latest(self) -> Optional[str]:
    paths = self.list()
    return paths[-1] if paths else None

  def load_latest(self) -> Optional[Dict[str, Any]]:
    path = self.latest()
    return None if path is None else load(path)


def load(path: str) -> Dict[str, Any]:
  """Reads one checkpoint, raising CheckpointError with the path and the reason on any problem."""
  try:
    with open(path, "rb") as f:
      data = pickle.load(f)
  except FileNotFoundError:
    raise CheckpointError(f"checkpoint {path} does not exist") from None
  except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ImportError, IndexError,
          TypeError, ValueError) as e:
    raise CheckpointError(f"checkpoint {path} is unreadable or corrupt ({type(e).__name__}: {e})"
                          ) from None
  if not isinstance(data, dict) or "format_version" not in data:
    raise CheckpointError(f"{path} is not a priorax checkpoint")
  if data["format_version"] != FORMAT_VERSION:
    raise CheckpointError(f"checkpoint {path} has format version {data['format_version']}; this "
                          f"priorax reads version {FORMAT_VERSION}")
  return data
