"""The Ray launcher: the local launcher's experiment on N actor processes, one machine or a cluster.

Nodes (Ray actors, `priorax.launchers.ray.nodes`): one Reverb server and the learner (both on the
driver's machine unless the learner asks for a GPU, which Ray finds wherever one is free), a
shared step counter, N actors (each reserving `actor_cpus`, with its own seed and environment) and
an evaluator. Actors pull the policy every `variable_update_period` steps of the agent's config
without waiting for the answer; the learner serves parameters from another thread while it steps.

Fault tolerance. Ray restarts an actor that dies (up to `max_actor_restarts` times) and retries
its `run`: the actor rejoins, having lost only its unfinished episode. The driver checkpoints the
learner and the Reverb tables every `checkpoint_every_s`, so launching again on the same run
directory resumes the learner step, the step counts and the replay contents. Ctrl-C (SIGINT) or
SIGTERM stops the actors and the learner, writes a final checkpoint and removes every node (and the
local Ray instance, if this launcher started it).

The driver writes the run directory exactly as the local launcher does (`config.json`, logs,
TensorBoard, checkpoints, `replay/`, `curve.png`, `summary.json`), plus `logs/system.csv`: per-actor
env steps/s, replay size, insert and sample rates, learner updates/s and the samples-per-insert
ratio achieved, every `log_every_s`. Checkpoints and `replay/` are written on the driver's machine.
"""

import dataclasses
import math
import os
import signal
import time
from typing import Any, Dict, List, Optional

import ray
from ray._private import ray_constants
from ray.util import scheduling_strategies

from priorax import core
from priorax import specs
from priorax.launchers import local
from priorax.launchers.ray import nodes
from priorax.utils import checkpointing
from priorax.utils import counting
from priorax.utils import loggers

# Verified with Ray 2.60 (DESIGN.md §3): with this set to "0" before Ray starts, every server of a
# local Ray instance listens on 127.0.0.1 only. Left alone when joining a cluster.
LOCAL_ONLY_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"
SYSTEM_LOG = "system"
# How long the driver waits for actors between its checks (seconds).
_POLL_S = 0.25
# How long a status call to a node may take before the driver moves on (seconds); a restarting
# actor answers once it is back.
_STATUS_TIMEOUT_S = 2.0


class ActorFailedError(RuntimeError):
  """An actor died more often than Ray may restart it."""


@dataclasses.dataclass(frozen=True)
class RayConfig:
  """How the experiment is spread over Ray.

  Attributes:
    num_actors: actor processes, each with its own environment and seed.
    address: a Ray cluster to join ("auto", "HOST:6379", "ray://HOST:10001"); None starts a local
      Ray instance that listens on 127.0.0.1 only.
    learner_gpus: GPUs the learner requests (0: it runs on the driver's machine, on CPU).
    actor_cpus: CPUs each actor reserves; Ray places at most (node CPUs / actor_cpus) per node.
    max_actor_restarts: how often Ray restarts each actor before the run fails.
  """

  num_actors: int = 2
  address: Optional[str] = None
  learner_gpus: float = 0.0
  actor_cpus: float = 1.0
  max_actor_restarts: int = 10

  def __post_init__(self):
    if self.num_actors < 1:
      raise ValueError(f"num_actors={self.num_actors} must be >= 1")
    if self.learner_gpus < 0:
      raise ValueError(f"learner_gpus={self.learner_gpus} must be >= 0")
    if not self.actor_cpus > 0:
      raise ValueError(f"actor_cpus={self.actor_cpus} must be > 0")
    if self.max_actor_restarts < 0:
      raise ValueError(f"max_actor_restarts={self.max_actor_restarts} must be >= 0")


def node_name(run_dir: str, role: str) -> str:
  """The Ray actor name of a run's node (`replay`, `learner`, `counter`, `evaluator`,
  `actor_<i>`): one run per run directory and cluster."""
  return f"priorax:{os.path.abspath(run_dir)}:{role}"


def connect(ray_config: RayConfig, num_cpus: Optional[int] = None) -> bool:
  """Starts a local Ray instance or joins `ray_config.address`, unless Ray is already
  initialised in this process; returns whether it did (and so must shut Ray down).

  A local instance gets `num_cpus` CPU slots (default: the machine's cores, or one slot per
  actor's `actor_cpus` if that is more: the actors then share the cores) and must end up on
  127.0.0.1, else this raises RuntimeError.
  """
  if ray.is_initialized():
    return False
  if ray_config.address is not None:
    ray.init(address=ray_config.address)
    return True
  os.environ[LOCAL_ONLY_ENV] = "0"  # Read by the processes Ray starts.
  # Ray reads the variable when it is imported; if that happened before it was set, set what it
  # read (the driver picks the node's IP from it).
  ray_constants.ENABLE_RAY_CLUSTER = False
  if num_cpus is None:
    num_cpus = max(os.cpu_count() or 1, math.ceil(ray_config.num_actors * ray_config.actor_cpus))
  ray.init(num_cpus=num_cpus, include_dashboard=False)
  address = ray.util.get_node_ip_address()
  if address != "127.0.0.1":
    ray.shutdown()
    raise RuntimeError(f"the local Ray instance listens on {address}, not 127.0.0.1; set "
                       f"{LOCAL_ONLY_ENV}=0 before importing ray")
  return True


def run_experiment(config: local.ExperimentConfig, ray_config: RayConfig) -> Dict[str, Any]:
  """Trains (or resumes) an agent on Ray; returns the run summary (also written to summary.json)."""
  local.prepare_run_dir(config)
  checkpointer = checkpointing.Checkpointer(os.path.join(config.run_dir, "checkpoints"))
  saved = checkpointer.load_latest()  # Read first: a corrupt checkpoint fails before any work.
  environment_spec = specs.make_environment_spec(config.environment_factory(config.seed))
  started = connect(ray_config)
  driver = _Driver(config, ray_config, environment_spec, checkpointer)
  try:
    return driver.run(saved)
  finally:
    driver.remove_nodes()
    if started:
      ray.shutdown()


class _Driver:
  """Starts the nodes, watches them, logs, evaluates and checkpoints."""

  def __init__(self, config: local.ExperimentConfig, ray_config: RayConfig,
               environment_spec: specs.EnvironmentSpec,
               checkpointer: checkpointing.Checkpointer):
    self._config = config
    self._ray_config = ray_config
    self._spec = environment_spec
    self._checkpointer = checkpointer
    self._nodes: List[Any] = []
    logger_factory = loggers.make_run_logger_factory(config.run_dir)
    self._loggers = {label: logger_factory(label)
                     for label in ("actor", "learner", "evaluator", SYSTEM_LOG)}
    self._progress = local.Progress(config.max_actor_steps, config.log_every_s, label="launch")
    self._counts: Dict[str, float] = {}  # The run's counts, merged from all nodes.
    self._pending_polls: Dict[int, Any] = {}
    # Per actor, the process ids of its restarted lives that answered a poll.
    self._restarted_pids: Dict[int, set] = {i: set() for i in range(ray_config.num_actors)}
    self._actor_steps: Dict[int, tuple] = {}  # actor -> (pid, steps, time) of its last poll.
    self._last_status: Optional[Dict[str, Any]] = None

  # Nodes.

  def _spawn(self, node_class, role: str, *args, **options):
    handle = ray.remote(node_class).options(
        name=node_name(self._config.run_dir, role), **options).remote(*args)
    self._nodes.append(handle)
    return handle

  def _start_nodes(self, saved: Optional[Dict[str, Any]]) -> None:
    config, ray_config = self._config, self._ray_config
    here = scheduling_strategies.NodeAffinitySchedulingStrategy(
        ray.get_runtime_context().get_node_id(), soft=False)
    # The replay checkpoints into the run directory, so it lives where the driver does.
    self.replay = self._spawn(nodes.ReplayNode, "replay", config.builder, self._spec,
                              os.path.join(config.run_dir, "replay"), num_cpus=0,
                              scheduling_strategy=here)
    learner_placement = ({"num_gpus": ray_config.learner_gpus} if ray_config.learner_gpus
                         else {"scheduling_strategy": here})
    # Nodes are started together (each waits for what it needs), so their start-up overlaps.
    self.learner = self._spawn(nodes.LearnerNode, "learner", config, self._spec, self.replay,
                               num_cpus=0, max_concurrency=4, **learner_placement)
    self.counter = self._spawn(counting.Counter, "counter", num_cpus=0)
    self.evaluator = self._spawn(nodes.EvaluatorNode, "evaluator", config, self._spec,
                                 self.learner, num_cpus=0)
    if saved is not None:
      self._restore(saved)
    self.actors = [
        self._spawn(nodes.ActorNode, f"actor_{i}", config, self._spec, i, ray_config.num_actors,
                    self.replay, self.learner, self.counter, num_cpus=ray_config.actor_cpus,
                    max_restarts=ray_config.max_actor_restarts, max_task_retries=-1,
                    max_concurrency=3)
        for i in range(ray_config.num_actors)]

  def _restore(self, saved: Dict[str, Any]) -> None:
    path = self._checkpointer.latest()
    counts = saved["counts"]
    by_prefix = {prefix: {k: v for k, v in counts.items() if k.startswith(prefix + "_")}
                 for prefix in ("actor", "learner", "evaluator")}
    error = ray.get(self.learner.restore.remote(saved["learner_state"], by_prefix["learner"], path))
    if error is not None:
      raise checkpointing.CheckpointError(error)
    ray.get([self.counter.restore.remote(by_prefix["actor"]),
             self.evaluator.restore.remote(by_prefix["evaluator"])])
    replay_size = ray.get(self.replay.info.remote())["size"]
    self.resumed_from = {"actor_steps": int(counts.get("actor_steps", 0)),
                         "learner_steps": int(saved["learner_state"]["steps"]),
                         "replay_size": replay_size}
    print(f"[launch] resumed from {path} at {self.resumed_from['actor_steps']:,} steps, learner "
          f"step {self.resumed_from['learner_steps']:,}, replay holds {replay_size:,} items",
          flush=True)

  def remove_nodes(self) -> None:
    for handle in self._nodes:
      ray.kill(handle, no_restart=True)
    self._nodes = []

  # Status, logs and checkpoints.

  def _refresh_counts(self) -> Dict[str, Any]:
    """Merges the counts of the counter, learner and evaluator; returns the learner's stats."""
    learner_stats, actor_counts = ray.get([self.learner.stats.remote(),
                                           self.counter.get_counts.remote()])
    self._counts.update(actor_counts)
    self._counts.update(learner_stats["counts"])
    error = learner_stats["error"]
    if error is not None:
      if "nonfinite_step" in error:
        raise core.NonFiniteLossError(error["nonfinite_step"])
      raise RuntimeError(f"the learner failed: {error['message']}")
    return learner_stats

  def _poll_actors(self) -> Dict[int, float]:
    """Collects finished episodes and steps/s of every actor that answers in time."""
    for i, actor in enumerate(self.actors):
      if i not in self._pending_polls:
        self._pending_polls[i] = actor.poll.remote()
    refs = list(self._pending_polls.values())
    ready, _ = ray.wait(refs, num_returns=len(refs), timeout=_STATUS_TIMEOUT_S)
    rates = {}
    for i, ref in list(self._pending_polls.items()):
      if ref not in ready:
        continue  # Restarting: asked again once it answers.
      del self._pending_polls[i]
      try:
        poll = ray.get(ref)
      except ray.exceptions.RayActorError:
        continue  # It died after answering nothing; its `run` reports whether it is gone for good.
      pid, steps, now = poll["pid"], poll["steps"], poll["time"]
      if poll["restarted"]:
        self._restarted_pids[i].add(pid)
      last = self._actor_steps.get(i)
      if last is not None and last[0] == pid and now > last[2]:
        rates[i] = (steps - last[1]) / (now - last[2])
      self._actor_steps[i] = (pid, steps, now)
      for episode in poll["episodes"]:
        self._progress.recent_returns.append(episode["episode_return"])
        self._loggers["actor"].write({
            "actor": i, "episode_return": episode["episode_return"],
            "episode_length": episode["episode_length"],
            "steps_per_second": episode["steps_per_second"],
            "actor_steps": self._counts.get("actor_steps", 0),
            "learner_steps": self._counts.get("learner_steps", 0)})
    return rates

  def actor_restarts(self) -> int:
    """Restarts seen so far (a life that died before answering a poll is not counted)."""
    return sum(len(pids) for pids in self._restarted_pids.values())

  def _log_status(self, learner_stats: Dict[str, Any]) -> None:
    """Writes the learner's newest row and a `system` row; prints a progress line."""
    now = time.time()
    rates = self._poll_actors()
    replay_info = ray.get(self.replay.info.remote())
    for row in learner_stats["rows"]:
      self._loggers["learner"].write({**row, "actor_steps": self._counts.get("actor_steps", 0)})
    status = {"time": now, "learner_steps": self._counts.get("learner_steps", 0), **replay_info}
    last = self._last_status
    if last is not None:
      elapsed = now - last["time"]
      inserts = status["inserts"] - last["inserts"]
      samples = status["samples"] - last["samples"]
      row = {"actor_steps": self._counts.get("actor_steps", 0),
             "learner_steps": status["learner_steps"], "walltime": now - self._start_time,
             "replay_size": replay_info["size"],
             "env_steps_per_s": sum(rates.values()) if rates else math.nan,
             "inserts_per_s": inserts / elapsed, "samples_per_s": samples / elapsed,
             "learner_updates_per_s": (status["learner_steps"] - last["learner_steps"]) / elapsed,
             "samples_per_insert": samples / inserts if inserts else math.nan,
             "samples_per_insert_target": self._config.builder.config.samples_per_insert,
             "actor_restarts": self.actor_restarts(),
             **{f"actor_{i}_steps_per_s": rates.get(i, math.nan)
                for i in range(self._ray_config.num_actors)}}
      self._loggers[SYSTEM_LOG].write(row)
    self._last_status = status
    self._progress.maybe_print(self._counts, force=True)

  def _save_checkpoint(self) -> str:
    saved = ray.get(self.learner.save.remote())
    if "nonfinite_step" in saved:
      raise core.NonFiniteLossError(saved["nonfinite_step"])
    self._refresh_counts()
    path = self._checkpointer.save(int(self._counts.get("actor_steps", 0)), {
        "learner_state": saved["state"], "counts": dict(self._counts),
        "replay_size": list(ray.get(self.replay.checkpoint.remote()))})
    return path

  def _record_evaluation(self, returns: List[float], counts: Dict[str, float]) -> Dict[str, Any]:
    row = local.record_evaluation(self._config, self._loggers["evaluator"], returns, counts)
    self._progress.last_eval = row["episode_return"]
    return row

  def _stop_collection(self) -> None:
    for actor in self.actors:
      actor.stop.remote()
    ray.get(self.learner.stop.remote())

  # The run.

  def run(self, saved: Optional[Dict[str, Any]]) -> Dict[str, Any]:
    config = self._config
    self.resumed_from = None
    self._start_nodes(saved)
    self._refresh_counts()
    previous_handlers = local.install_interrupt_handlers()
    self._start_time = time.time()
    runs = [actor.run.remote(config.max_actor_steps) for actor in self.actors]
    ray.get(self.learner.start.remote())
    next_eval = (int(self._counts.get("actor_steps", 0)) // config.eval_every + 1) * \
        config.eval_every
    pending_eval, eval_counts = None, None
    last_checkpoint = last_log = time.time()
    warm = None  # (time, actor steps, learner steps) at the first learner update.
    interrupted, failure = False, None
    try:
      while True:
        done, _ = ray.wait(runs, num_returns=len(runs), timeout=_POLL_S)
        for ref in done:
          try:
            ray.get(ref)
          except ray.exceptions.RayActorError as e:
            index = runs.index(ref)
            raise ActorFailedError(f"actor {index} died more than max_actor_restarts="
                               f"{self._ray_config.max_actor_restarts} times: {e}") from None
        learner_stats = self._refresh_counts()
        steps = int(self._counts.get("actor_steps", 0))
        if warm is None and self._counts.get("learner_steps", 0) > 0:
          warm = (time.time(), steps, self._counts.get("learner_steps", 0))
        if len(done) == len(runs):
          break
        if time.time() - last_log >= config.log_every_s:
          self._log_status(learner_stats)
          last_log = time.time()
        if pending_eval is not None and ray.wait([pending_eval], timeout=0)[0]:
          returns, evaluator_counts = ray.get(pending_eval)
          self._counts.update(evaluator_counts)
          self._record_evaluation(returns, eval_counts)
          pending_eval = None
        if pending_eval is None and next_eval <= steps < config.max_actor_steps:
          pending_eval, eval_counts = (self.evaluator.evaluate.remote(config.eval_episodes),
                                       dict(self._counts))
          next_eval = (steps // config.eval_every + 1) * config.eval_every
        if time.time() - last_checkpoint >= config.checkpoint_every_s:
          self._save_checkpoint()
          last_checkpoint = time.time()
    except KeyboardInterrupt:
      interrupted = True
    except ActorFailedError as e:  # Keep what was learned.
      failure = e
    finally:
      for sig, previous in previous_handlers.items():
        signal.signal(sig, previous)
    end_time = time.time()
    self._stop_collection()
    self._log_status(self._refresh_counts())
    path = self._save_checkpoint()
    print(f"[launch] checkpoint saved: {path}", flush=True)
    if failure is not None:
      raise failure
    if interrupted:
      print(f"[launch] interrupted at {int(self._counts.get('actor_steps', 0)):,} steps; run the "
            f"same command again to resume", flush=True)
      raise KeyboardInterrupt
    return self._finish(warm, end_time)

  def _finish(self, warm, end_time: float) -> Dict[str, Any]:
    config = self._config
    returns, evaluator_counts = ray.get(self.evaluator.evaluate.remote(config.eval_episodes))
    self._counts.update(evaluator_counts)
    final = self._record_evaluation(returns, self._counts)
    replay_info = ray.get(self.replay.info.remote())
    summary = local.make_summary(config, self._counts, final)
    steps, learner_steps = summary["actor_steps"], summary["learner_steps"]
    warm_s = end_time - warm[0] if warm is not None else 0.0
    summary.update({
        "launcher": "ray",
        "num_actors": self._ray_config.num_actors,
        # Rates after the learner's first update (warm-up and compilation excluded).
        "train_env_steps_per_s": (steps - warm[1]) / warm_s if warm_s > 0 else None,
        "learner_updates_per_s": (learner_steps - warm[2]) / warm_s if warm_s > 0 else None,
        "samples_per_insert": (replay_info["samples"] / replay_info["inserts"]
                               if replay_info["inserts"] else None),
        "samples_per_insert_target": config.builder.config.samples_per_insert,
        "replay_size": replay_info["size"],
        "actor_restarts": self.actor_restarts(),
        "resumed_from": self.resumed_from,
    })
    if config.video:
      summary["video"] = self._record_video()
    local.write_summary(config, summary)
    return summary

  def _record_video(self) -> str:
    from priorax.launchers import evaluation  # pylint: disable=g-import-not-at-top
    from priorax.utils import video  # Rendering is optional: import only when asked.
    config = self._config
    environment = config.environment_factory(config.seed + nodes.EVALUATOR_SEED_OFFSET)
    networks = config.builder.make_networks(self._spec)
    policy = ray.get(self.learner.get_variables.remote(["policy"]))[0]
    actor = config.builder.make_actor(config.builder.make_policy(networks, evaluation=True),
                                      evaluation.StaticVariables({"policy": policy}),
                                      nodes.split_keys(config.seed)[2])
    path = os.path.join(config.run_dir, "policy.mp4")
    video.record_video(environment, actor.select_action, path)
    return path
