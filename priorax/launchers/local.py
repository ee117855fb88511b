"""The local launcher: one process, an embedded Reverb server, acting and learning overlapped.

The actor runs in the main thread (environment, CPU policy, adder) and the learner in a second
thread (Reverb dataset → jitted update). Reverb's samples-per-insert rate limiter couples them, so
on average `updates_per_step` updates happen per environment step while both cores stay busy.

A run directory holds `config.json`, CSV and TensorBoard logs, `checkpoints/` (learner state,
counters, actor RNG), `replay/` (Reverb checkpoints: the replay buffer survives a restart),
`curve.png`, `summary.json` and optionally `policy.mp4`. Launching again on the same directory
resumes from its latest checkpoint; Ctrl-C (SIGINT) or SIGTERM writes a final checkpoint first.
"""

import dataclasses
import glob
import json
import os
import shutil
import signal
import threading
import time
from typing import Any, Callable, Dict, List, Optional

import dm_env
import jax
import numpy as np
import reverb

from priorax import replay
from priorax import specs
from priorax.loop import EnvironmentLoop
from priorax.utils import checkpointing
from priorax.utils import counting
from priorax.utils import loggers

CONFIG_FILE = "config.json"
SUMMARY_FILE = "summary.json"
CURVE_FILE = "curve.png"
RUN_FORMAT_VERSION = 1
_REPLAY_CHECKPOINTS_KEPT = 1
# How long a checkpoint waits for the transitions in flight to reach the table.
_FLUSH_TIMEOUT_S = 30.0


@dataclasses.dataclass(frozen=True)
class ExperimentConfig:
  """What both launchers need to run an experiment.

  Attributes:
    agent: agent name (recorded in the run directory).
    builder: the agent's builder (tables, adder, dataset, networks, prior, learner, actor).
    environment_name: recorded in the run directory.
    environment_factory: seed -> environment.
    run_dir: where logs, checkpoints and plots go.
    seed: seeds networks, actor and environments.
    max_actor_steps: total environment steps of the run (a resumed run counts what it did).
    eval_every: environment steps between evaluations of the deterministic policy.
    eval_episodes: episodes per evaluation (the final one too).
    checkpoint_every_s: seconds between periodic checkpoints (also taken at the end).
    log_every_s: seconds between progress lines and learner log rows.
    video: record the final policy to `policy.mp4`.
    run_description: extra JSON-able fields written to config.json (e.g. CLI overrides).
  """

  agent: str
  builder: Any
  environment_name: str
  environment_factory: Callable[[int], dm_env.Environment]
  run_dir: str
  seed: int = 0
  max_actor_steps: int = 100_000
  eval_every: int = 10_000
  eval_episodes: int = 5
  checkpoint_every_s: float = 300.0
  log_every_s: float = 5.0
  video: bool = False
  run_description: Dict[str, Any] = dataclasses.field(default_factory=dict)

  def __post_init__(self):
    for name in ("max_actor_steps", "eval_every", "eval_episodes"):
      if getattr(self, name) < 1:
        raise ValueError(f"{name}={getattr(self, name)} must be >= 1")
    if self.checkpoint_every_s <= 0 or self.log_every_s <= 0:
      raise ValueError("checkpoint_every_s and log_every_s must be > 0")


class RunDirectoryError(ValueError):
  """The run directory belongs to a different experiment."""


def describe(config: ExperimentConfig) -> Dict[str, Any]:
  """The JSON written to `config.json` (and compared on resume)."""
  return {
      "format_version": RUN_FORMAT_VERSION,
      "agent": config.agent,
      "env": config.environment_name,
      "seed": config.seed,
      "agent_config": dataclasses.asdict(config.builder.config),
      **config.run_description,
  }


def prepare_run_dir(config: ExperimentConfig) -> None:
  """Creates the run directory, or checks that an existing one is for the same experiment."""
  os.makedirs(config.run_dir, exist_ok=True)
  path = os.path.join(config.run_dir, CONFIG_FILE)
  current = json.loads(json.dumps(describe(config)))
  if os.path.exists(path):
    try:
      with open(path) as f:
        saved = json.load(f)
    except (OSError, json.JSONDecodeError) as e:
      raise RunDirectoryError(f"{path} is unreadable ({e}); use a new --run-dir") from None
    # Fields added to the agent's config after the run was created compare at their defaults.
    defaults = {f.name: f.default for f in dataclasses.fields(config.builder.config)
                if f.default is not dataclasses.MISSING}
    saved_agent_config = {**json.loads(json.dumps(defaults)), **saved.get("agent_config", {})}
    saved = {**saved, "agent_config": saved_agent_config}
    keys = ("format_version", "agent", "env", "seed", "agent_config")
    differing = [k for k in keys if saved.get(k) != current.get(k)]
    if differing:
      details = "; ".join(f"{k}: saved {saved.get(k)!r}, now {current.get(k)!r}"
                          for k in differing if k != "agent_config")
      if "agent_config" in differing:
        fields = sorted(k for k in current["agent_config"]
                        if saved.get("agent_config", {}).get(k) != current["agent_config"][k])
        details = "; ".join(filter(None, [details, f"agent config fields {fields} differ"]))
      raise RunDirectoryError(f"run directory {config.run_dir} holds a different experiment "
                              f"({details}); use a new --run-dir or the same settings to resume")
  with open(path, "w") as f:
    json.dump(current, f, indent=2)


def restore_learner_state(learner, saved: Dict[str, Any], path: str) -> None:
  """Restores a learner from a checkpoint's `learner_state` dict, checking structure and shapes."""
  template = learner.save()
  try:
    state = template._replace(**saved)
  except ValueError as e:
    raise checkpointing.CheckpointError(f"checkpoint {path} does not match this agent ({e})"
                                        ) from None
  expected = jax.tree_util.tree_map(np.shape, template)
  got = jax.tree_util.tree_map(np.shape, state)
  if jax.tree_util.tree_structure(template) != jax.tree_util.tree_structure(state) or \
      expected != got:
    raise checkpointing.CheckpointError(
        f"checkpoint {path} was written by a differently configured network (parameter shapes "
        f"differ); use a new --run-dir")
  learner.restore(state)


class Progress:
  """Prints one status line (`[label] steps | steps/s | learner updates | returns`) every
  `period_s` seconds."""

  def __init__(self, total_steps: int, period_s: float, label: str = "train"):
    self._total = total_steps
    self._label = label
    self._period_s = period_s
    self._last_time = time.time()
    self._last_steps = None
    self._last_updates = None
    self.recent_returns: List[float] = []
    self.last_eval: Optional[float] = None

  def maybe_print(self, counts: Dict[str, float], force: bool = False) -> None:
    now = time.time()
    if not force and now - self._last_time < self._period_s:
      return
    steps, updates = int(counts.get("actor_steps", 0)), int(counts.get("learner_steps", 0))
    elapsed = max(now - self._last_time, 1e-9)
    rate = "" if self._last_steps is None else f" | {(steps - self._last_steps) / elapsed:.0f} steps/s"
    update_rate = ("" if self._last_updates is None
                   else f" ({(updates - self._last_updates) / elapsed:.0f}/s)")
    recent = self.recent_returns[-10:]
    returns = f" | return {np.mean(recent):.1f} (last {len(recent)})" if recent else ""
    evaluation = f" | eval {self.last_eval:.1f}" if self.last_eval is not None else ""
    print(f"[{self._label}] {steps:,}/{self._total:,} steps{rate} | learner {updates:,} updates"
          f"{update_rate}{returns}{evaluation}", flush=True)
    self._last_time, self._last_steps, self._last_updates = now, steps, updates


class LearnerThread(threading.Thread):
  """Steps the learner until stopped; records the exception that ended it, if any."""

  def __init__(self, learner, on_error: Callable[[], None]):
    super().__init__(name="learner", daemon=True)
    self._learner = learner
    self._on_error = on_error
    self.stop = threading.Event()
    self.error: Optional[BaseException] = None

  def run(self):
    try:
      while not self.stop.is_set():
        self._learner.step()
    except BaseException as e:  # pylint: disable=broad-except
      if not self.stop.is_set():
        self.error = e
        self._on_error()


def install_interrupt_handlers() -> Dict[int, Any]:
  """Makes SIGINT and SIGTERM raise KeyboardInterrupt in the main thread (final checkpoint, clean
  exit); returns the previous handlers.

  Installed after Reverb, TensorFlow and the dataset are set up: a native library can replace the
  process's C-level SIGINT handler (seen here: Ctrl-C was silently ignored), and `signal.signal`
  puts Python's back.
  """
  if threading.current_thread() is not threading.main_thread():
    return {}

  def handler(signum, frame):
    del signum, frame
    raise KeyboardInterrupt

  return {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}


class Interruptible:
  """A `with` block in which Ctrl-C and SIGTERM raise KeyboardInterrupt in the main thread
  (`install_interrupt_handlers`); the interrupt ends the block without propagating and sets
  `interrupted`, so the caller can still write its final checkpoint. Handlers are restored on
  exit."""

  def __enter__(self) -> "Interruptible":
    self._previous = install_interrupt_handlers()
    self.interrupted = False
    return self

  def __exit__(self, exc_type, exc, traceback) -> bool:
    for sig, previous in self._previous.items():
      signal.signal(sig, previous)
    self.interrupted = exc_type is not None and issubclass(exc_type, KeyboardInterrupt)
    return self.interrupted


class PeriodicCheckpoint:
  """Calls `save` once `period_s` seconds have passed since its last call (or since creation)."""

  def __init__(self, save: Callable[[], str], period_s: float):
    self._save = save
    self._period_s = period_s
    self._last = time.time()

  def save(self) -> str:
    """Saves now and restarts the period."""
    path = self._save()
    self._last = time.time()
    return path

  def maybe_save(self) -> None:
    if time.time() - self._last >= self._period_s:
      self.save()


def close_replay(iterator: Any, server: reverb.Server) -> None:
  """Closes a prefetching iterator, then stops its server: a Reverb sample cannot be interrupted
  once its server is gone."""
  close = getattr(iterator, "close", None)
  if close is not None:
    close(timeout=1.0)
  server.stop()


def end_learner_run(label: str, save_checkpoint: Callable[[], str], iterator: Any,
                    server: reverb.Server, *, interrupted: bool, learner_steps: int) -> None:
  """Ends a run that only steps a learner (offline, distillation, NPMP): final checkpoint, then
  `close_replay`; after Ctrl-C or SIGTERM, says how to resume and re-raises KeyboardInterrupt."""
  try:
    path = save_checkpoint()
    print(f"[{label}] checkpoint saved: {path}", flush=True)
  finally:
    close_replay(iterator, server)
  if interrupted:
    print(f"[{label}] interrupted at {learner_steps:,} learner steps; run the same command again "
          f"to resume", flush=True)
    raise KeyboardInterrupt


def checkpoint_replay(client: reverb.Client, replay_dir: str) -> None:
  """Checkpoints the Reverb server into `replay_dir` and deletes all but the newest checkpoint."""
  replay.checkpoint(client)
  checkpoints = sorted(p for p in glob.glob(os.path.join(replay_dir, "*")) if os.path.isdir(p))
  for old in checkpoints[:-_REPLAY_CHECKPOINTS_KEPT]:
    shutil.rmtree(old, ignore_errors=True)


def record_evaluation(config: ExperimentConfig, logger: loggers.Logger, returns: List[float],
                      counts: Dict[str, float], *, x_key: str = "actor_steps",
                      x_label: str = "environment steps") -> Dict[str, Any]:
  """Logs one evaluation (mean and std of `returns`) and redraws the run's learning curve
  against the count `x_key` (learner steps for a run that never acts, e.g. offline)."""
  # Imported here: matplotlib takes a quarter of this module's import time, and the Ray
  # launcher's nodes import this module but never plot.
  from priorax.utils import plotting  # pylint: disable=g-import-not-at-top
  row = {"actor_steps": counts.get("actor_steps", 0),
         "learner_steps": counts.get("learner_steps", 0),
         "episode_return": float(np.mean(returns)), "episode_return_std": float(np.std(returns)),
         "episodes": len(returns)}
  logger.write(row)
  plotting.plot_learning_curve(os.path.join(config.run_dir, "logs", "evaluator.csv"),
                               os.path.join(config.run_dir, CURVE_FILE),
                               f"{config.agent} on {config.environment_name}", x_key=x_key,
                               x_label=x_label)
  return row


def make_summary(config: ExperimentConfig, counts: Dict[str, float],
                 final: Dict[str, Any]) -> Dict[str, Any]:
  """The fields of `summary.json` that every launcher writes."""
  return {
      "agent": config.agent,
      "env": config.environment_name,
      "seed": config.seed,
      "actor_steps": int(counts.get("actor_steps", 0)),
      "learner_steps": int(counts.get("learner_steps", 0)),
      "final_eval_return": final["episode_return"],
      "final_eval_return_std": final["episode_return_std"],
      "eval_episodes": final["episodes"],
  }


def write_summary(config: ExperimentConfig, summary: Dict[str, Any]) -> None:
  with open(os.path.join(config.run_dir, SUMMARY_FILE), "w") as f:
    json.dump(summary, f, indent=2)


def run_experiment(config: ExperimentConfig) -> Dict[str, Any]:
  """Trains (or resumes) an agent; returns the run summary (also written to summary.json)."""
  prepare_run_dir(config)
  run_dir, builder = config.run_dir, config.builder
  environment = config.environment_factory(config.seed)
  environment_spec = specs.make_environment_spec(environment)
  networks = builder.make_networks(environment_spec)
  prior = builder.make_prior(environment_spec)
  learner_key, actor_key, evaluator_key = jax.random.split(jax.random.PRNGKey(config.seed), 3)

  checkpointer = checkpointing.Checkpointer(os.path.join(run_dir, "checkpoints"))
  saved = checkpointer.load_latest()  # Read first: a corrupt checkpoint fails before any work.
  replay_dir = os.path.join(run_dir, "replay")
  server = replay.make_server(builder.make_replay_tables(environment_spec),
                              checkpoint_dir=replay_dir)
  address = f"localhost:{server.port}"
  client = reverb.Client(address)

  logger_factory = loggers.make_run_logger_factory(
      run_dir, period_s={"learner": config.log_every_s})
  counter = counting.Counter()
  iterator = builder.make_dataset_iterator(address)
  learner = builder.make_learner(networks, prior, iterator, learner_key, environment_spec,
                                 counter=counting.Counter(counter, "learner"),
                                 logger=logger_factory("learner"))
  adder = builder.make_adder(client)
  actor = builder.make_actor(builder.make_policy(networks, evaluation=False), learner, actor_key,
                             adder)
  eval_actor = builder.make_actor(builder.make_policy(networks, evaluation=True), learner,
                                  evaluator_key)
  if saved is not None:
    restore_learner_state(learner, saved["learner_state"], checkpointer.latest())
    counter.restore(saved["counts"])
    if "actor_key" in saved:  # Ray runs save none: each of their actors derives its own.
      actor.key = saved["actor_key"]
    print(f"[train] resumed from {checkpointer.latest()} at {int(counter.get('actor_steps')):,} "
          f"steps, replay holds {replay_size(client):,} items", flush=True)

  train_loop = EnvironmentLoop(environment, actor, counter=counter,
                               logger=logger_factory("actor"), label="actor")
  eval_environment = config.environment_factory(config.seed + 1_000_003)
  eval_loop = EnvironmentLoop(eval_environment, eval_actor, counter=counter, label="evaluator",
                              should_update=False)
  eval_logger = logger_factory("evaluator")
  progress = Progress(config.max_actor_steps, config.log_every_s)

  def save_checkpoint(flush_timeout_s: float):
    learner.check_finite()  # Never overwrite a good checkpoint with a diverged state.
    state = learner.save()
    path = checkpointer.save(int(counter.get("actor_steps")), {
        "learner_state": state._asdict(),
        "counts": counter.save(),
        "actor_key": np.asarray(actor.key),
    })
    # The replay checkpoint then holds every step acted so far, unless the rate limiter still
    # holds some back (only a sampling learner lets them in).
    if not adder.flush(timeout_s=flush_timeout_s):
      print("[train] warning: the replay checkpoint misses the last transitions, which the rate "
            "limiter held back", flush=True)
    checkpoint_replay(client, replay_dir)
    return path

  def evaluate():
    results = eval_loop.run(num_episodes=config.eval_episodes)
    row = record_evaluation(config, eval_logger, [r["episode_return"] for r in results],
                            counter.get_counts())
    progress.last_eval = row["episode_return"]
    return row

  learner_thread = LearnerThread(learner, on_error=server.stop)
  previous_handlers = install_interrupt_handlers()
  min_replay = builder.config.min_replay_size
  acting_time, acting_steps = 0.0, 0
  next_eval = (int(counter.get("actor_steps")) // config.eval_every + 1) * config.eval_every
  last_checkpoint = time.time()
  interrupted = False
  try:
    learner_thread.start()
    while counter.get("actor_steps") < config.max_actor_steps:
      steps_before = counter.get("actor_steps")
      # Throughput counts whole episodes after warm-up and the first (compiling) update.
      warm = replay_size(client) >= min_replay and counter.get("learner_steps") > 0
      start = time.time()
      try:
        result = train_loop.run_episode(max_steps=int(config.max_actor_steps - steps_before))
      except Exception:  # pylint: disable=broad-except
        if learner_thread.error is not None:  # The server was stopped because the learner failed.
          raise learner_thread.error from None
        raise
      if warm:
        acting_time += time.time() - start
        acting_steps += result["episode_length"]
      if learner_thread.error is not None:
        raise learner_thread.error
      if result["actor_episodes"] and result["episode_length"]:
        progress.recent_returns.append(result["episode_return"])
      progress.maybe_print(counter.get_counts())
      steps = counter.get("actor_steps")
      if steps >= next_eval and steps < config.max_actor_steps:
        evaluate()
        next_eval = (int(steps) // config.eval_every + 1) * config.eval_every
      if time.time() - last_checkpoint >= config.checkpoint_every_s:
        save_checkpoint(flush_timeout_s=_FLUSH_TIMEOUT_S)
        last_checkpoint = time.time()
  except KeyboardInterrupt:
    interrupted = True
  finally:
    if learner_thread.error is None:  # While the learner samples, the held-back inserts go in.
      adder.flush(timeout_s=_FLUSH_TIMEOUT_S)
    learner_thread.stop.set()
    for sig, previous in previous_handlers.items():
      signal.signal(sig, previous)

  try:
    if learner_thread.error is None:
      path = save_checkpoint(flush_timeout_s=1.0)  # Nothing samples now: a short last try.
      print(f"[train] checkpoint saved: {path}", flush=True)
  finally:
    # A learner blocked on an empty buffer is a daemon thread and is left behind after a short
    # wait: the final checkpoint is already written.
    close_replay(iterator, server)
    learner_thread.join(timeout=1.0)
  if learner_thread.error is not None:
    raise learner_thread.error
  if interrupted:
    print(f"[train] interrupted at {int(counter.get('actor_steps')):,} steps; run the same "
          f"command again to resume", flush=True)
    raise KeyboardInterrupt

  final = evaluate()
  counts = counter.get_counts()
  progress.maybe_print(counts, force=True)
  summary = make_summary(config, counts, final)
  summary["train_env_steps_per_s"] = acting_steps / acting_time if acting_time > 0 else None
  if config.video:
    from priorax.utils import video  # Rendering is optional: import only when asked.
    path = os.path.join(run_dir, "policy.mp4")
    video.record_video(eval_environment, lambda obs: eval_actor.select_action(obs), path)
    summary["video"] = path
  write_summary(config, summary)
  return summary


def replay_size(client: reverb.Client) -> int:
  return int(sum(info.current_size for info in client.server_info().values()))
