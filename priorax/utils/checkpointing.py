"""Versioned checkpoint files, written atomically.

A checkpoint is one pickle of plain data (numpy pytrees, dicts, numbers) with a format version, so an
incompatible file fails with a clear message instead of a confusing unpickling error. Files are
written to a temporary name and renamed, so a crash mid-write (or kill -9) never leaves a torn
latest checkpoint; the newest `keep` files are kept.
"""

import glob
import json
import os
import pickle
import re
from typing import Any, Dict, Optional, Sequence, Tuple, Union

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


def load_run(run_dir: str, *, field: str,
             agent: Union[str, Sequence[str]]) -> Tuple[Dict[str, Any], Dict[str, Any]]:
  """(config.json, latest checkpoint) of the `agent` run in `run_dir`, for a later run to reuse.

  Args:
    run_dir: a run directory written by the launchers.
    field: the config field that named `run_dir` (quoted in errors, e.g. "prior_from").
    agent: the agent that must have written the run, or a sequence of the agents that may have.

  Raises:
    CheckpointError: naming `field`, when the directory's config is unreadable, it holds another
      agent's run, or it has no checkpoint yet.
  """
  config_path = os.path.join(run_dir, "config.json")
  try:
    with open(config_path) as f:
      run_config = json.load(f)
  except (OSError, json.JSONDecodeError) as e:
    raise CheckpointError(f"{field}={run_dir!r}: cannot read {config_path} ({e})") from None
  agents = (agent,) if isinstance(agent, str) else tuple(agent)
  if run_config.get("agent") not in agents:
    raise CheckpointError(f"{field}={run_dir!r} holds a {run_config.get('agent')!r} run; expected "
                          f"{' or '.join(agents)}")
  data = Checkpointer(os.path.join(run_dir, "checkpoints")).load_latest()
  if data is None:
    raise CheckpointError(f"{field}={run_dir!r} has no checkpoint")
  return run_config, data
