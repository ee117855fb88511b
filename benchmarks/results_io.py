"""Writes benchmark results in the shared schema of DESIGN.md §8, so runs compare across commits.

    {"benchmark", "commit", "date", "machine", "command", "records": [
        {"task", "method", "seed", "metric", "value", "unit", "env_steps"}]}

Every benchmark writes `benchmarks/results/<name>.json` with `write_results` and a PNG beside it.
"""

import datetime
import json
import os
import platform
import shlex
import subprocess
import sys
from typing import List, NamedTuple, Optional

RESULTS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")


class Record(NamedTuple):
  """One measured figure; `metric` is lower_snake_case and says what it measures."""

  task: str
  method: str
  metric: str
  value: float
  unit: str
  seed: Optional[int] = None
  env_steps: Optional[int] = None


def _commit() -> str:
  try:
    return subprocess.check_output(
        ["git", "rev-parse", "--short", "HEAD"], cwd=os.path.dirname(RESULTS_DIR),
        stderr=subprocess.DEVNULL, text=True).strip()
  except (subprocess.CalledProcessError, FileNotFoundError):
    return "unknown"


def machine_description() -> str:
  """CPU model and core count: absolute figures only compare on the same kind of machine."""
  cpu = platform.processor() or platform.machine()
  try:
    with open("/proc/cpuinfo") as f:
      for line in f:
        if line.startswith("model name"):
          cpu = line.split(":", 1)[1].strip()
          break
  except OSError:
    pass
  return f"{cpu}, {os.cpu_count()} cores, {platform.system()} {platform.release()}"


def write_results(name: str, records: List[Record], command: Optional[str] = None,
                  machine: Optional[str] = None) -> str:
  """Writes `benchmarks/results/<name>.json` and returns its path; `machine` defaults to the CPU's
  `machine_description` (a benchmark that ran on an accelerator names it too)."""
  if not records:
    raise ValueError(f"benchmark {name!r} produced no records")
  os.makedirs(RESULTS_DIR, exist_ok=True)
  doc = {
      "benchmark": name,
      "commit": _commit(),
      "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
      "machine": machine or machine_description(),
      "command": command or " ".join(shlex.quote(a) for a in sys.argv),
      "records": [
          {"task": r.task, "method": r.method, "seed": r.seed, "metric": r.metric,
           "value": float(r.value), "unit": r.unit, "env_steps": r.env_steps}
          for r in records
      ],
  }
  path = os.path.join(RESULTS_DIR, f"{name}.json")
  with open(path, "w") as f:
    json.dump(doc, f, indent=2)
  return path
