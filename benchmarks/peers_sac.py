"""Side-by-side SAC training throughput: priorax's `kl_svg0` against Stable-Baselines3 and sbx.

DESIGN.md §8 asks for ratios against peers measured in one run, since absolute figures move between
machines of the same kind. All three methods train SAC on `dmc:cartpole-swingup` in the same
setting: policy and twin critics 256×256 MLPs, batch 256, one gradient update per environment step,
CPU only, `--warmup` uniformly random steps before learning starts, then `--steps` training steps.
They run one after another, never concurrently, so none competes with another for the cores (other
tenants of a shared machine still may: the CPU pressure during each run is printed).

- `kl_svg0`: priorax's agent (uniform prior, i.e. SAC) through its CLI in priorax's venv,
  `priorax train ... --steps warmup+steps --set min_replay_size=warmup --set batch_size=256
  --set updates_per_step=1.0` (256×256 networks are its defaults); its figure is the
  `train_env_steps_per_s` of the run's `summary.json`. Skipped, with a message, while the CLI is
  not usable.
- `sb3_sac`, `sbx_sac`: the peers in their own venvs under `--venv-root` (sbx needs a newer JAX and
  numpy than priorax's pins), created here from `peers/requirements-{sb3,sbx}.txt` and re-created
  when that file changes; `peers/run_peer.py` trains them on `peers/dmc_gym.py`'s Gymnasium view of
  the task.

Metric: `train_env_steps_per_s`, environment steps per wall-clock second of the training phase. For
the peers the clock starts after the first training step and its update (so start-up, the warm-up
and one-off JIT compilation are excluded) and stops after the last update (see `run_peer.py`).

Writes `benchmarks/results/peers_sac.json` (one record per measured method, plus
`speedup_vs_sbx_sac` = kl_svg0 / sbx_sac when both ran) and `peers_sac.png`; logs and run
directories go to `benchmarks/results/peers_sac_work/`.

    .venv/bin/python benchmarks/peers_sac.py --steps 5000 --warmup 1000 --seed 0
"""

import argparse
import hashlib
import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from typing import Dict, List, Optional

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # pylint: disable=wrong-import-position

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchmarks import results_io  # pylint: disable=wrong-import-position

NAME = "peers_sac"
TASK = "dmc:cartpole-swingup"
METRIC = "train_env_steps_per_s"
UNIT = "env_steps/s"
METHODS = ("kl_svg0", "sb3_sac", "sbx_sac")
PEER_LIBRARIES = {"sb3_sac": "sb3", "sbx_sac": "sbx"}

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
REPO_DIR = os.path.dirname(BENCH_DIR)
PEERS_DIR = os.path.join(BENCH_DIR, "peers")
WORK_DIR = os.path.join(results_io.RESULTS_DIR, f"{NAME}_work")
# Headless MuJoCo (DESIGN.md §7); the peers' JAX and torch stay on the CPU.
RUN_ENV = {"MUJOCO_GL": "egl", "JAX_PLATFORMS": "cpu", "CUDA_VISIBLE_DEVICES": ""}


def _cpu_stall_us() -> Optional[int]:
  """Microseconds in which some task waited for a CPU (Linux PSI), or None where unreadable.

  Other tenants of a shared machine slow a method down; the share of a method's run spent stalled
  (its own threads count too) says how disturbed its figure may be. It is printed, not recorded.
  """
  try:
    with open("/proc/pressure/cpu") as f:
      return int(f.readline().rsplit("total=", 1)[1])
  except (OSError, IndexError, ValueError):
    return None


class MethodError(RuntimeError):
  """A method's subprocess failed; the message names its log."""


def _run_logged(argv: List[str], log_path: str) -> None:
  """Runs `argv` with its output appended to `log_path`; raises `MethodError` on failure."""
  with open(log_path, "a") as log:
    log.write(f"$ {' '.join(shlex.quote(a) for a in argv)}\n")
    log.flush()
    code = subprocess.call(argv, stdout=log, stderr=subprocess.STDOUT,
                           env={**os.environ, **RUN_ENV}, cwd=REPO_DIR)
  if code != 0:
    with open(log_path) as log:
      tail = "".join(log.readlines()[-20:])
    raise MethodError(f"{argv[0]} exited with {code}; see {log_path}:\n{tail}")


def _ensure_venv(library: str, venv_root: str, python: str, log_path: str) -> str:
  """Returns the peer venv's Python, (re)creating the venv when its requirements file changed."""
  requirements = os.path.join(PEERS_DIR, f"requirements-{library}.txt")
  with open(requirements, "rb") as f:
    digest = hashlib.sha256(f.read()).hexdigest()
  venv = os.path.join(venv_root, library)
  venv_python = os.path.join(venv, "bin", "python")
  stamp = os.path.join(venv, ".installed")
  if os.path.exists(stamp):
    with open(stamp) as f:
      if f.read().strip() == digest:
        return venv_python
  print(f"[{NAME}] creating {venv} from {os.path.relpath(requirements, REPO_DIR)}", flush=True)
  shutil.rmtree(venv, ignore_errors=True)
  _run_logged([python, "-m", "venv", venv], log_path)
  _run_logged([venv_python, "-m", "pip", "install", "--quiet", "-r", requirements], log_path)
  _run_logged([venv_python, "-m", "pip", "check"], log_path)
  with open(stamp, "w") as f:
    f.write(digest + "\n")
  return venv_python


def _run_peer(method: str, args: argparse.Namespace) -> Dict:
  library = PEER_LIBRARIES[method]
  log_path = os.path.join(WORK_DIR, f"{method}.log")
  venv_python = _ensure_venv(library, args.venv_root, args.python, log_path)
  out = os.path.join(WORK_DIR, f"{method}.json")
  if os.path.exists(out):
    os.remove(out)
  _run_logged([venv_python, os.path.join(PEERS_DIR, "run_peer.py"), "--library", library,
               "--env", TASK, "--seed", str(args.seed), "--warmup", str(args.warmup),
               "--steps", str(args.steps), "--out", out], log_path)
  with open(out) as f:
    result = json.load(f)
  return {"value": result[METRIC], "env_steps": result["env_steps"],
          "note": f"{result['timed_env_steps']} steps in {result['train_seconds']:.1f} s, "
                  f"last episode return {result['last_episode_return']}"}


def _priorax_unusable(priorax: str) -> Optional[str]:
  """Why priorax's CLI can't run yet (missing, or `priorax train --help` fails), else None."""
  if not os.path.exists(priorax):
    return f"{priorax} does not exist"
  probe = subprocess.run([priorax, "train", "--help"], capture_output=True, text=True,
                         env={**os.environ, **RUN_ENV}, cwd=REPO_DIR)
  if probe.returncode != 0:
    lines = (probe.stderr or probe.stdout).strip().splitlines()
    return f"`{priorax} train --help` exited with {probe.returncode}: " + (
        lines[-1] if lines else "no output")
  return None


def _run_kl_svg0(args: argparse.Namespace) -> Optional[Dict]:
  why = _priorax_unusable(args.priorax)
  if why:
    print(f"[{NAME}] SKIPPING kl_svg0: priorax's CLI is not usable yet ({why})", flush=True)
    return None
  run_dir = os.path.join(WORK_DIR, "kl_svg0_run")
  shutil.rmtree(run_dir, ignore_errors=True)
  argv = [args.priorax, "train", "--agent", "kl_svg0", "--env", TASK,
          "--steps", str(args.warmup + args.steps), "--seed", str(args.seed),
          "--run-dir", run_dir, "--set", f"min_replay_size={args.warmup}",
          "--set", "batch_size=256", "--set", "updates_per_step=1.0"]
  for override in args.kl_svg0_set:
    argv += ["--set", override]
  _run_logged(argv, os.path.join(WORK_DIR, "kl_svg0.log"))
  with open(os.path.join(run_dir, "summary.json")) as f:
    summary = json.load(f)
  return {"value": summary[METRIC], "env_steps": summary["actor_steps"],
          "note": f"final eval return {summary.get('final_eval_return')}"}


def _plot(measured: Dict[str, Dict], path: str) -> None:
  methods = [m for m in METHODS if m in measured]
  values = [measured[m]["value"] for m in methods]
  fig, ax = plt.subplots(figsize=(6, 4))
  bars = ax.bar(methods, values, color=["C0" if m == "kl_svg0" else "C7" for m in methods])
  ax.bar_label(bars, fmt="%.1f")
  ax.margins(y=0.12)
  ax.set_ylabel(f"{METRIC} ({UNIT})")
  if "kl_svg0" in measured and "sbx_sac" in measured:
    ratio = f"kl_svg0 / sbx_sac = {measured['kl_svg0']['value'] / measured['sbx_sac']['value']:.2f}×"
  else:
    ratio = "kl_svg0 / sbx_sac: not measured"
  ax.set_title(f"SAC training throughput, {TASK} (CPU)\n{ratio}")
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--steps", type=int, default=5000,
                      help="training steps after the warm-up, the same for every method")
  parser.add_argument("--warmup", type=int, default=1000,
                      help="uniformly random environment steps before learning starts")
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--methods", default=",".join(METHODS),
                      help=f"comma-separated subset of {','.join(METHODS)}")
  parser.add_argument("--venv-root", default=os.path.join(REPO_DIR, ".bench_venvs"),
                      help="where the peers' virtual environments live")
  parser.add_argument("--python", default="python3.11", help="the Python that makes those venvs")
  parser.add_argument("--priorax", default=os.path.join(REPO_DIR, ".venv", "bin", "priorax"),
                      help="priorax's CLI")
  parser.add_argument("--kl-svg0-set", action="append", default=[], metavar="KEY=VALUE",
                      help="extra `--set` override for kl_svg0 (repeatable)")
  args = parser.parse_args()
  methods = [m for m in args.methods.split(",") if m]
  unknown = sorted(set(methods) - set(METHODS))
  if unknown:
    parser.error(f"unknown methods {unknown}; expected a subset of {list(METHODS)}")
  if args.warmup < 1 or args.steps < 2:
    parser.error(f"--warmup={args.warmup} must be >= 1 and --steps={args.steps} >= 2")
  os.makedirs(WORK_DIR, exist_ok=True)

  measured = {}
  for method in [m for m in METHODS if m in methods]:
    print(f"[{NAME}] {method}: {args.warmup} warm-up + {args.steps} training steps "
          f"(1-min load average before: {os.getloadavg()[0]:.2f})", flush=True)
    start, stall = time.time(), _cpu_stall_us()
    try:
      result = _run_kl_svg0(args) if method == "kl_svg0" else _run_peer(method, args)
    except MethodError as e:
      sys.exit(f"[{NAME}] {method} failed: {e}")
    if result is None:
      continue
    measured[method] = result
    seconds, end_stall = time.time() - start, _cpu_stall_us()
    contention = "" if None in (stall, end_stall) else (
        f", CPU pressure (PSI some) {100 * (end_stall - stall) / (seconds * 1e6):.0f}%")
    print(f"[{NAME}] {method}: {result['value']:.1f} {UNIT} ({result['note']}; "
          f"{seconds:.0f} s in all{contention})", flush=True)
  if not measured:
    sys.exit(f"[{NAME}] no method was measured")

  records = [results_io.Record(TASK, m, METRIC, r["value"], UNIT, args.seed, r["env_steps"])
             for m, r in measured.items()]
  if "kl_svg0" in measured and "sbx_sac" in measured:
    records.append(results_io.Record(
        TASK, "kl_svg0", "speedup_vs_sbx_sac",
        measured["kl_svg0"]["value"] / measured["sbx_sac"]["value"], "ratio", args.seed,
        measured["kl_svg0"]["env_steps"]))
  interpreter = sys.executable
  if interpreter.startswith(REPO_DIR + os.sep):
    interpreter = os.path.relpath(interpreter, REPO_DIR)
  command = " ".join(shlex.quote(a) for a in [interpreter, os.path.relpath(os.path.abspath(__file__), REPO_DIR)]
                     + sys.argv[1:])
  path = results_io.write_results(NAME, records, command=command)
  _plot(measured, os.path.join(results_io.RESULTS_DIR, f"{NAME}.png"))
  print(f"[{NAME}] wrote {path} and {NAME}.png", flush=True)


if __name__ == "__main__":
  main()
