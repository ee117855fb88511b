"""The processes of a distributed run, as plain classes the launcher turns into Ray actors.

- `ReplayNode` serves the agent's Reverb tables (restored from, and checkpointed to, the run's
  `replay/` directory) and reports their size and insert/sample counts.
- `LearnerNode` steps the learner in a background thread, fed by a Reverb dataset, and serves its
  parameters to actors meanwhile: Ray runs each call in a thread of its own, so a parameter fetch
  never waits for an update or stalls the learning loop.
- `ActorNode` runs episodes with its own environment and seed, writing to Reverb, until the shared
  step counter reaches the run's budget. Parameters come through a `RemoteVariableSource`.
- `EvaluatorNode` runs the deterministic policy on demand and returns the episode returns.

Nodes do no file I/O except Reverb's own checkpoints: logs, checkpoints and plots are written by
the launcher's driver, so a run directory looks the same wherever the nodes run. The shared step
counter is a `priorax.utils.counting.Counter` made remote as it is.
"""

import math
import os
import threading
import time
import warnings
from typing import Any, Dict, List, Optional, Sequence, Tuple

import jax
import numpy as np
import ray
import reverb

from priorax import core
from priorax import replay
from priorax import specs
from priorax.launchers import local
from priorax.loop import EnvironmentLoop
from priorax.utils import checkpointing
from priorax.utils import counting
from priorax.utils import loggers

# Offset of the evaluator's environment seed (the local launcher's, so both evaluate alike).
EVALUATOR_SEED_OFFSET = 1_000_003


def split_keys(seed: int) -> Tuple[Any, Any, Any]:
  """The learner, actor and evaluator keys: the local launcher's split of the run's seed."""
  return tuple(jax.random.split(jax.random.PRNGKey(seed), 3))


class RemoteVariableSource(core.VariableSource):
  """Fetches variables from a remote `LearnerNode` without making the actor wait for them.

  Asynchronous (actors): each call returns the variables of the last finished fetch and starts
  the next one if none is in flight, so an actor pulling every K steps acts with parameters at
  most K steps plus one round trip old; only the very first call blocks. Synchronous
  (evaluator): each call waits for the learner's current variables.
  """

  def __init__(self, learner: Any, asynchronous: bool = True):
    self._learner = learner
    self._asynchronous = asynchronous
    self._latest: Dict[Tuple[str, ...], List[Any]] = {}
    self._pending: Dict[Tuple[str, ...], Any] = {}

  def get_variables(self, names: Sequence[str]) -> List[Any]:
    names = tuple(names)
    if not self._asynchronous:
      return ray.get(self._learner.get_variables.remote(names))
    pending = self._pending.get(names)
    if pending is not None and ray.wait([pending], timeout=0)[0]:
      self._latest[names] = ray.get(self._pending.pop(names))
    if names not in self._latest:
      self._latest[names] = ray.get(self._learner.get_variables.remote(names))
    if names not in self._pending:
      self._pending[names] = self._learner.get_variables.remote(names)
    return self._latest[names]


class _Rows(loggers.Logger):
  """Keeps written rows until `take` hands them over (to the driver, which writes the logs)."""

  def __init__(self, keep_last_only: bool = False):
    self._keep_last_only = keep_last_only
    self._rows: List[Dict[str, Any]] = []
    self._lock = threading.Lock()

  def write(self, data: loggers.LoggingData) -> None:
    row = dict(data)
    with self._lock:
      self._rows = [row] if self._keep_last_only else self._rows + [row]

  def take(self) -> List[Dict[str, Any]]:
    with self._lock:
      rows, self._rows = self._rows, []
    return rows


class ReplayNode:
  """Serves the agent's Reverb tables; checkpoints them into `replay_dir` and restores from it."""

  def __init__(self, builder: Any, environment_spec: specs.EnvironmentSpec, replay_dir: str):
    self._replay_dir = replay_dir
    self._server = replay.make_server(builder.make_replay_tables(environment_spec),
                                      checkpoint_dir=replay_dir)
    self._client = reverb.Client(f"localhost:{self._server.port}")

  def address(self) -> str:
    """`host:port` for clients: the node's IP (127.0.0.1 on a local run) and the server's port."""
    return f"{ray.util.get_node_ip_address()}:{self._server.port}"

  def info(self) -> Dict[str, int]:
    """Items held, and inserts and samples completed since this server started (all tables)."""
    tables = self._client.server_info().values()
    return {
        "size": int(sum(t.current_size for t in tables)),
        "inserts": int(sum(t.rate_limiter_info.insert_stats.completed for t in tables)),
        "samples": int(sum(t.rate_limiter_info.sample_stats.completed for t in tables)),
    }

  def checkpoint(self) -> Tuple[int, int]:
    """Checkpoints the tables; returns the items held just before and just after (actors keep
    inserting meanwhile, so the checkpoint holds a number in between)."""
    before = self.info()["size"]
    local.checkpoint_replay(self._client, self._replay_dir)
    return before, self.info()["size"]

class LearnerNode:
  """Steps the agent's learner in a thread; serves its variables and state meanwhile."""

  def __init__(self, config: local.ExperimentConfig, environment_spec: specs.EnvironmentSpec,
               replay_node: Any):
    builder = config.builder
    replay_address = ray.get(replay_node.address.remote())
    networks = builder.make_networks(environment_spec)
    prior = builder.make_prior(environment_spec)
    learner_key, _, _ = split_keys(config.seed)
    self._counter = counting.Counter()
    self._rows = _Rows(keep_last_only=True)
    self._iterator = builder.make_dataset_iterator(replay_address)
    self._learner = builder.make_learner(
        networks, prior, self._iterator, learner_key, environment_spec,
        counter=counting.Counter(self._counter, "learner"),
        logger=loggers.TimeFilter(self._rows, config.log_every_s))
    self._thread = local.LearnerThread(self._learner, on_error=lambda: None)

  def restore(self, learner_state: Dict[str, Any], counts: Dict[str, float],
              path: str) -> Optional[str]:
    """Restores a checkpoint's learner state and `learner_*` counts; returns an error message
    (raised by the driver as a CheckpointError) if the checkpoint does not fit this agent."""
    try:
      local.restore_learner_state(self._learner, learner_state, path)
    except checkpointing.CheckpointError as e:
      return str(e)
    self._counter.restore(counts)
    return None

  def start(self) -> None:
    self._thread.start()

  def get_variables(self, names: Sequence[str]) -> List[Any]:
    return jax.device_get(self._learner.get_variables(names))

  def stats(self) -> Dict[str, Any]:
    """Counts, the learner's newest metrics row (if one was written since the last call), and
    what ended the learning thread, if anything did."""
    error = self._thread.error
    return {"counts": self._counter.get_counts(), "rows": self._rows.take(),
            "error": None if error is None else _describe_error(error)}

  def save(self) -> Dict[str, Any]:
    """{"state": the learner state as a dict} or, if an update diverged, {"nonfinite_step": k}.

    The learner may keep stepping: its state is replaced, never modified, by an update, so the
    state read here is one consistent update step.
    """
    try:
      self._learner.check_finite()  # Never overwrite a good checkpoint with a diverged state.
    except core.NonFiniteLossError as e:
      return {"nonfinite_step": e.step}
    return {"state": self._learner.save()._asdict()}

  def stop(self) -> None:
    """Stops the learning thread (after its current update) and the dataset's prefetcher."""
    self._thread.stop.set()
    close = getattr(self._iterator, "close", None)
    if close is not None:
      close(timeout=1.0)


def _describe_error(error: BaseException) -> Dict[str, Any]:
  if isinstance(error, core.NonFiniteLossError):
    return {"nonfinite_step": error.step}
  return {"message": f"{type(error).__name__}: {error}"}


def _actor_seed(seed: int, index: int, start_steps: int, restart_id: int) -> int:
  """A distinct seed per actor and per life: the run's start (`start_steps` = 0 on a fresh run,
  the restored count on a resumed one) and, after a restart by Ray, the new process's id (the
  counter may not have moved since the last life began)."""
  return int(np.random.SeedSequence([seed, index, start_steps, restart_id]).generate_state(1)[0])


class ActorNode:
  """Acts in its own environment and writes to Reverb until the run's step budget is spent.

  Steps are reported to the shared counter once per episode (or cut episode); an actor that dies
  loses only its unreported, unfinished episode. Ray restarts it (`max_restarts`) by running this
  constructor again, which reads the counter to seed the new life, and retries `run`.
  """

  def __init__(self, config: local.ExperimentConfig, environment_spec: specs.EnvironmentSpec,
               index: int, num_actors: int, replay_node: Any, learner: Any, counter: Any):
    builder = config.builder
    replay_address = ray.get(replay_node.address.remote())
    self._index = index
    self._num_actors = num_actors
    self._counter = counter
    self._global = ray.get(counter.get_counts.remote())
    start_steps = int(self._global.get("actor_steps", 0))
    with warnings.catch_warnings():  # Ray 2.60 warns about its own use of a deprecated name.
      warnings.simplefilter("ignore", DeprecationWarning)
      self._restarted = ray.get_runtime_context().was_current_actor_reconstructed
    life_seed = _actor_seed(config.seed, index, start_steps,
                            os.getpid() if self._restarted else 0)
    _, actor_key, _ = split_keys(config.seed)
    key = jax.random.fold_in(actor_key, life_seed)
    networks = builder.make_networks(environment_spec)
    self._adder = builder.make_adder(reverb.Client(replay_address))
    actor = builder.make_actor(builder.make_policy(networks, evaluation=False),
                               RemoteVariableSource(learner), key, self._adder)
    self._local = counting.Counter()
    self._episodes = _Rows()
    self._loop = EnvironmentLoop(
        config.environment_factory(life_seed), actor,
        counter=self._local, logger=self._episodes, label="actor")
    self._stop = threading.Event()

  def run(self, max_actor_steps: int) -> None:
    """Runs episodes until the counter reaches `max_actor_steps` (or `stop`). Each episode is cut
    at this actor's share of the steps left, so the run ends within about one share of the
    budget; the adder then drops what is pending of the cut episode (written items stay)."""
    while not self._stop.is_set():
      remaining = max_actor_steps - int(self._global.get("actor_steps", 0))
      if remaining <= 0:
        return
      before = self._local.get_counts()
      self._loop.run_episode(max_steps=math.ceil(remaining / self._num_actors))
      after = self._local.get_counts()
      increments = {name: after.get(name, 0) - before.get(name, 0)
                    for name in ("actor_steps", "actor_episodes")}
      if not increments["actor_episodes"]:  # Cut before its end.
        self._adder.reset()
      self._global = ray.get(self._counter.increment.remote(**increments))

  def poll(self) -> Dict[str, Any]:
    """This life's step count and finished episodes since the last poll, its process id, and
    whether Ray restarted this actor to begin it."""
    return {"steps": int(self._local.get("actor_steps")), "episodes": self._episodes.take(),
            "pid": os.getpid(), "restarted": self._restarted, "time": time.time()}

  def pid(self) -> int:
    return os.getpid()

  def stop(self) -> None:
    self._stop.set()


class EvaluatorNode:
  """Runs the deterministic policy with the learner's current parameters, on demand."""

  def __init__(self, config: local.ExperimentConfig, environment_spec: specs.EnvironmentSpec,
               learner: Any):
    builder = config.builder
    networks = builder.make_networks(environment_spec)
    _, _, evaluator_key = split_keys(config.seed)
    actor = builder.make_actor(builder.make_policy(networks, evaluation=True),
                               RemoteVariableSource(learner, asynchronous=False), evaluator_key)
    self._counter = counting.Counter()
    self._loop = EnvironmentLoop(
        config.environment_factory(config.seed + EVALUATOR_SEED_OFFSET), actor,
        counter=self._counter, label="evaluator", should_update=False)

  def restore(self, counts: Dict[str, float]) -> None:
    self._counter.restore(counts)

  def evaluate(self, num_episodes: int) -> Tuple[List[float], Dict[str, float]]:
    """The returns of `num_episodes` episodes, and the evaluator's counts after them."""
    results = self._loop.run(num_episodes=num_episodes)
    return [r["episode_return"] for r in results], self._counter.get_counts()
