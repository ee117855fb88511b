"""The Ray launcher on localhost: data flows, a killed actor is survived, a killed run resumes,
Ctrl-C stops everything with a final checkpoint.

One Ray instance (2 CPUs, 127.0.0.1 only) serves the in-process runs of this module; the runs
started as a subprocess either join it or start their own. Every test removes what it started.
"""

import csv
import json
import os
import signal
import subprocess
import sys
import threading
import time

import pytest
import ray

from priorax.launchers import cli
from priorax.launchers import ray as ray_launcher
from priorax.utils import checkpointing
from tests.launchers.conftest import TINY

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TIMEOUT_S = 110
FIRST_UPDATE_TIMEOUT_S = 400
# 250-step episodes (action repeat 4), so step counts move every few seconds.
FLAGS = ["--env", "dmc:cartpole-balance", "--action-repeat", "4", "--eval-episodes", "1",
         "--log-every-s", "1", "--set", "variable_update_period=10", *TINY]


@pytest.fixture(scope="module")
def ray_instance():
  with pytest.MonkeyPatch.context() as patch:
    patch.setenv(ray_launcher.LOCAL_ONLY_ENV, "0")
    assert ray_launcher.connect(ray_launcher.RayConfig(num_actors=2), num_cpus=2)
    try:
      assert ray.util.get_node_ip_address() == "127.0.0.1"
      yield ray.get_runtime_context().gcs_address
    finally:
      ray.shutdown()


def _launch_args(run_dir, steps, *extra):
  return ["launch", "--run-dir", str(run_dir), "--steps", str(steps), "--num-actors", "2",
          *FLAGS, *extra]


def _rows(path):
  with open(path, newline="") as f:
    return list(csv.DictReader(f))


def _run_nodes(run_dir):
  """Names of the run's live nodes, whichever driver (namespace) started them."""
  prefix = ray_launcher.node_name(str(run_dir), "")
  return [actor["name"] for actor in ray.util.list_named_actors(all_namespaces=True)
          if actor["name"].startswith(prefix)]


def _session_processes(sid):
  """Pids of live processes in session `sid` (a subprocess started with a new session)."""
  pids = []
  for entry in os.listdir("/proc"):
    if entry.isdigit():
      try:
        if os.getsid(int(entry)) == sid:
          pids.append(int(entry))
      except (ProcessLookupError, PermissionError):
        pass
  return pids


def _cmdline(pid):
  try:
    with open(f"/proc/{pid}/cmdline") as f:
      return f.read().replace("\0", " ")
  except OSError:
    return ""


def _wait_for(condition, what, timeout=TIMEOUT_S):
  deadline = time.time() + timeout
  while time.time() < deadline:
    if condition():
      return
    time.sleep(0.5)
  raise AssertionError(f"timed out waiting for {what}")


def test_two_actors_feed_the_learner_and_the_run_finishes(ray_instance, tmp_path):
  assert cli.main(_launch_args(tmp_path, 1000, "--eval-every", "500")) == 0
  summary = json.loads((tmp_path / "summary.json").read_text())
  assert summary["launcher"] == "ray" and summary["num_actors"] == 2
  assert 1000 <= summary["actor_steps"] <= 1000 + 2 * 250
  assert summary["learner_steps"] > 0 and summary["replay_size"] >= 64
  assert summary["samples_per_insert"] > 0
  episodes = _rows(tmp_path / "logs" / "actor.csv")
  assert {row["actor"] for row in episodes} == {"0", "1"}  # Both actors wrote to Reverb.
  system = _rows(tmp_path / "logs" / "system.csv")
  assert system and {"replay_size", "inserts_per_s", "samples_per_s", "learner_updates_per_s",
                     "samples_per_insert", "actor_0_steps_per_s",
                     "actor_1_steps_per_s"} <= set(system[0])
  assert max(float(row["learner_updates_per_s"]) for row in system) > 0
  assert len(_rows(tmp_path / "logs" / "evaluator.csv")) >= 2  # Mid-run and final.
  assert (tmp_path / "curve.png").exists() and (tmp_path / "config.json").exists()
  saved = checkpointing.Checkpointer(str(tmp_path / "checkpoints")).load_latest()
  assert int(saved["learner_state"]["steps"]) == summary["learner_steps"] > 0
  assert not _run_nodes(tmp_path)  # Every node was removed.


def test_a_killed_actor_is_restarted_and_the_run_completes(ray_instance, tmp_path):
  result = {}
  thread = threading.Thread(
      target=lambda: result.setdefault("code", cli.main(_launch_args(tmp_path, 4000))))
  thread.start()
  try:
    def actor_is_up():
      try:
        result["pid"] = ray.get(ray.get_actor(ray_launcher.node_name(str(tmp_path), "actor_0"))
                                .pid.remote(), timeout=5)
        return True
      except (ValueError, ray.exceptions.GetTimeoutError):
        return False
    _wait_for(actor_is_up, "actor 0")
    os.kill(result["pid"], signal.SIGKILL)
  finally:
    thread.join(TIMEOUT_S)
  assert not thread.is_alive() and result["code"] == 0
  summary = json.loads((tmp_path / "summary.json").read_text())
  assert summary["actor_restarts"] >= 1  # The restarted actor answered the driver.
  assert summary["actor_steps"] >= 4000 and summary["learner_steps"] > 0
  assert not _run_nodes(tmp_path)


def test_a_killed_run_resumes_learner_step_counts_and_replay(ray_instance, tmp_path):
  # The first run joins this module's Ray instance from its own driver process, which is then
  # killed with SIGKILL: Ray removes the nodes that driver owned.
  env = {**os.environ, "PYTHONPATH": os.pathsep.join([REPO, os.environ.get("PYTHONPATH", "")])}
  process = subprocess.Popen(
      [sys.executable, "-m", "priorax.launchers.cli",
       *_launch_args(tmp_path, 100_000, "--ray-address", ray_instance,
                     "--eval-every", "100000", "--checkpoint-every-s", "1")],
      stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
  checkpoints = checkpointing.Checkpointer(str(tmp_path / "checkpoints"))
  try:
    _wait_for(lambda: checkpoints.latest() and
              checkpoints.load_latest()["counts"].get("actor_steps", 0) >= 250 and
              int(checkpoints.load_latest()["learner_state"]["steps"]) > 0, "a checkpoint")
    assert _run_nodes(tmp_path)
  finally:
    process.kill()
    out = process.communicate(timeout=TIMEOUT_S)[0]
    print(out)
  _wait_for(lambda: not _run_nodes(tmp_path), "Ray to remove the killed run's nodes", 30)
  saved = checkpoints.load_latest()
  steps, learner_steps = int(saved["counts"]["actor_steps"]), int(saved["learner_state"]["steps"])

  assert cli.main(_launch_args(tmp_path, steps + 500, "--eval-every", "100000")) == 0, out
  summary = json.loads((tmp_path / "summary.json").read_text())
  resumed = summary["resumed_from"]
  assert resumed["actor_steps"] == steps and resumed["learner_steps"] == learner_steps
  # The replay was checkpointed just before the learner's file was written.
  assert resumed["replay_size"] >= saved["replay_size"][0] > 0
  assert summary["actor_steps"] >= steps + 500 and summary["learner_steps"] > learner_steps


def test_ctrl_c_writes_a_final_checkpoint_and_leaves_no_process(tmp_path):
  # Its own local Ray instance, interrupted as a terminal's Ctrl-C does: SIGINT to the group.
  env = {**os.environ, "PYTHONPATH": os.pathsep.join([REPO, os.environ.get("PYTHONPATH", "")])}
  process = subprocess.Popen(
      [sys.executable, "-m", "priorax.launchers.cli",
       *_launch_args(tmp_path, 100_000, "--eval-every", "100000")],
      stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
      start_new_session=True)
  seen, learning = [], False
  try:
    # Ray's start-up and the first jit take well over TIMEOUT_S on a loaded 2-core machine; an
    # interrupt before the first update would test nothing, so wait for one (a bounded wait).
    deadline = time.time() + FIRST_UPDATE_TIMEOUT_S
    while not learning and time.time() < deadline:
      line = process.stdout.readline()
      if not line:
        break
      seen.append(line)
      learning = "[launch]" in line and "learner 0 updates" not in line
    assert learning, (f"no learner update within {FIRST_UPDATE_TIMEOUT_S} s:\n" + "".join(seen))
    servers = [_cmdline(pid) for pid in _session_processes(process.pid)
               if "gcs_server" in _cmdline(pid)]
    assert servers and all("--node-ip-address=127.0.0.1" in c for c in servers), "".join(seen)
    os.killpg(process.pid, signal.SIGINT)
    out = "".join(seen) + process.communicate(timeout=TIMEOUT_S)[0]
  finally:
    if process.poll() is None:
      os.killpg(process.pid, signal.SIGKILL)
  assert process.returncode == cli.EXIT_INTERRUPTED, out
  assert "checkpoint saved" in out and "run the same command again to resume" in out
  assert "Traceback" not in out
  saved = checkpointing.Checkpointer(str(tmp_path / "checkpoints")).load_latest()
  assert int(saved["learner_state"]["steps"]) > 0
  _wait_for(lambda: not _session_processes(process.pid), "Ray's processes to exit", 30)


@pytest.mark.parametrize("flag,value", [("--num-actors", "0"), ("--learner-gpus", "-1"),
                                        ("--actor-cpus", "0")])
def test_launch_rejects_bad_resources_in_one_line(tmp_path, capsys, flag, value):
  with pytest.raises(SystemExit) as exit_info:
    cli.main(["launch", "--run-dir", str(tmp_path), flag, value])
  assert exit_info.value.code == cli.EXIT_BAD_INPUT
  error = capsys.readouterr().err
  assert len(error.strip().splitlines()) == 1 and value in error
