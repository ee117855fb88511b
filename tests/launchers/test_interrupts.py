"""A run stopped by Ctrl-C, SIGTERM or kill -9 resumes from its checkpoint (learner and replay).

These start the real console script in a subprocess and signal it, as a user or a cluster would.
"""

import os
import signal
import subprocess
import sys
import time

import pytest

from priorax.launchers import cli
from priorax.utils import checkpointing
from tests.launchers.conftest import TINY

EXE = os.path.join(os.path.dirname(sys.executable), "priorax")
TIMEOUT_S = 150


def _start(run_dir, steps, checkpoint_every_s="1000"):
  return subprocess.Popen(
      [EXE, "train", "--env", "dmc:cartpole-balance", "--steps", str(steps), "--run-dir",
       str(run_dir), "--eval-every", "100000", "--eval-episodes", "1", "--log-every-s", "1",
       "--checkpoint-every-s", checkpoint_every_s, *TINY],
      stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _wait_for_line(process, fragment):
  """Reads the process's output until a line contains `fragment`; returns everything read."""
  seen = []
  deadline = time.time() + TIMEOUT_S
  while time.time() < deadline:
    line = process.stdout.readline()
    if not line:
      break
    seen.append(line)
    if fragment in line:
      return "".join(seen)
  process.kill()
  raise AssertionError(f"never printed {fragment!r}:\n{''.join(seen)}")


def _finish(process):
  try:
    out, _ = process.communicate(timeout=TIMEOUT_S)
  except subprocess.TimeoutExpired:
    process.kill()
    raise
  return out


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupt_writes_a_final_checkpoint_and_exits_cleanly(tmp_path, sig):
  process = _start(tmp_path, 100_000)
  _wait_for_line(process, "learner")  # A progress line: acting and learning are under way.
  process.send_signal(sig)
  out = _finish(process)
  assert process.returncode == cli.EXIT_INTERRUPTED, out
  assert "checkpoint saved" in out and "run the same command again to resume" in out
  assert "Traceback" not in out
  saved = checkpointing.Checkpointer(str(tmp_path / "checkpoints")).load_latest()
  assert saved["counts"]["actor_steps"] > 0


def test_kill_9_then_relaunch_resumes_learner_counters_and_replay(tmp_path):
  process = _start(tmp_path, 100_000, checkpoint_every_s="0.5")
  checkpoints = checkpointing.Checkpointer(str(tmp_path / "checkpoints"))
  deadline = time.time() + TIMEOUT_S
  while time.time() < deadline and not (checkpoints.latest() and
                                        checkpoints.load_latest()["counts"]["actor_steps"] >= 2000):
    time.sleep(0.5)
  process.kill()  # SIGKILL: no handler runs.
  process.communicate(timeout=TIMEOUT_S)
  saved = checkpoints.load_latest()
  steps = int(saved["counts"]["actor_steps"])
  learner_steps = int(saved["learner_state"]["steps"])
  assert steps >= 2000 and learner_steps > 0

  resumed = _start(tmp_path, steps + 200)
  out = _finish(resumed)
  assert resumed.returncode == 0, out
  assert f"at {steps:,} steps" in out
  replay_items = int(out.split("replay holds ")[1].split(" items")[0].replace(",", ""))
  assert replay_items >= steps - 1000  # The replay checkpoint taken with the learner's.
  final = checkpoints.load_latest()
  assert final["counts"]["actor_steps"] == steps + 200
  assert int(final["learner_state"]["steps"]) > learner_steps
