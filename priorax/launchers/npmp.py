"""`priorax npmp` and `priorax npmp-track`: distil an expert library into an NPMP, then track.

    priorax npmp --library LIB --run-dir RUN [--skills a,b] [--steps N] [--set lfpc=true ...]
    priorax npmp-track --run-dir RUN --skill NAME [--library LIB] [--episode I] [--video F.mp4]

Training is offline, in one process: the library's reference episodes are written once into an
embedded Reverb server (`NPMPBuilder.load_library`: windows of T + K steps), and the learner steps
on batches sampled from it, prefetched to `jax.devices()[0]`. `--steps` counts learner steps.

The run directory is `launchers.local`'s: config.json (the `NPMPConfig`, the library and its
skills, the shapes the networks were built for), logs/ (CSV + TensorBoard), checkpoints/,
summary.json. Launching again on the same directory resumes from the latest checkpoint (learner,
optimiser, RNG, counts); Ctrl-C or SIGTERM writes a final checkpoint first. The replay table is not
checkpointed: on resume it is refilled from the library (deterministically: the LFPC
perturbations are seeded by the run's seed), which costs seconds, not a copy of the data.
"""

import dataclasses
import json
import os
import time
from typing import Any, Dict, Optional, Tuple

import jax
import numpy as np
import reverb

from priorax import replay
from priorax.agents.npmp import acting
from priorax.agents.npmp import builder as builder_lib
from priorax.agents.npmp import config as config_lib
from priorax.agents.npmp import tracking
from priorax.experts import library as library_lib
from priorax.launchers import local
from priorax.utils import checkpointing
from priorax.utils import counting
from priorax.utils import loggers


@dataclasses.dataclass(frozen=True)
class NPMPRunConfig:
  """What `run_npmp` trains.

  Attributes:
    library: the expert library directory.
    run_dir: where logs and checkpoints go.
    agent_config: the NPMP's hyper-parameters.
    skills: the library's skills to train on (None: all of them); the others are held out.
    seed: seeds the networks, the latent noise and the LFPC perturbations.
    steps: learner steps of the run (a resumed run counts those it did).
    checkpoint_every_s: seconds between periodic checkpoints (also taken at the end).
    log_every_s: seconds between progress lines and learner log rows.
  """

  library: str
  run_dir: str
  agent_config: config_lib.NPMPConfig
  skills: Optional[Tuple[str, ...]] = None
  seed: int = 0
  steps: int = 10_000
  checkpoint_every_s: float = 300.0
  log_every_s: float = 5.0

  def __post_init__(self):
    if self.steps < 1:
      raise ValueError(f"steps={self.steps} must be >= 1")


class _Recording(loggers.Logger):
  """Forwards to a logger and keeps the last row written, for the progress line."""

  def __init__(self, logger: loggers.Logger):
    self._logger = logger
    self.last: Dict[str, Any] = {}

  def write(self, data) -> None:
    self.last = dict(data)
    self._logger.write(data)

  def wants_write(self) -> bool:
    return self._logger.wants_write()

  def close(self) -> None:
    self._logger.close()


def _experiment(config: NPMPRunConfig, library: library_lib.Library,
                builder: builder_lib.NPMPBuilder, spec) -> local.ExperimentConfig:
  """The run-directory description of `local` (config.json and its resume check)."""
  action_repeats = sorted({skill.action_repeat for skill in library.skills})
  if len(action_repeats) != 1:
    raise library_lib.LibraryError(f"the skills of {library.path} use action repeats "
                                   f"{action_repeats}; one NPMP needs one control step")
  return local.ExperimentConfig(
      agent=acting.AGENT, builder=builder, environment_name=f"library:{library.body}",
      environment_factory=lambda seed: None, run_dir=config.run_dir, seed=config.seed,
      max_actor_steps=config.steps, checkpoint_every_s=config.checkpoint_every_s,
      log_every_s=config.log_every_s,
      run_description={
          "library": os.path.abspath(library.path),
          "skills": [skill.name for skill in library.skills],
          "observation_shapes": {k: list(s.shape) for k, s in spec.observations.items()},
          "action_size": int(np.prod(spec.actions.shape)),
          "action_repeat": action_repeats[0],
          "transitions": int(sum(skill.transitions for skill in library.skills))})


def run_npmp(config: NPMPRunConfig) -> Dict[str, Any]:
  """Trains (or resumes) an NPMP on the library; returns the run summary."""
  library = library_lib.load_library(config.library, config.skills)
  builder = builder_lib.NPMPBuilder(config.agent_config)
  spec = builder_lib.library_spec(library)
  experiment = _experiment(config, library, builder, spec)
  local.prepare_run_dir(experiment)
  run_dir = config.run_dir
  networks = builder.make_networks(spec)
  learner_key, data_key = jax.random.split(jax.random.PRNGKey(config.seed))

  checkpointer = checkpointing.Checkpointer(os.path.join(run_dir, "checkpoints"))
  saved = checkpointer.load_latest()  # Read first: a corrupt checkpoint fails before any work.
  server = replay.make_server(builder.make_replay_tables(spec))
  address = f"localhost:{server.port}"
  start = time.time()
  steps_fed = builder.load_library(reverb.Client(address), library, data_key)
  print(f"[npmp] loaded {steps_fed:,} reference steps of {len(library.skills)} skills "
        f"({', '.join(s.name for s in library.skills)}) in {time.time() - start:.1f} s",
        flush=True)

  logger_factory = loggers.make_run_logger_factory(
      run_dir, step_key="learner_steps", period_s={"learner": config.log_every_s})
  counter = counting.Counter()
  logger = _Recording(logger_factory("learner"))
  iterator = builder.make_dataset_iterator(address)
  learner = builder.make_learner(networks, iterator, learner_key,
                                 counter=counting.Counter(counter, "learner"), logger=logger)
  if saved is not None:
    local.restore_learner_state(learner, saved["learner_state"], checkpointer.latest())
    counter.restore(saved["counts"])
    print(f"[npmp] resumed from {checkpointer.latest()} at "
          f"{int(counter.get('learner_steps')):,} learner steps", flush=True)

  def save_checkpoint():
    learner.check_finite()  # Never overwrite a good checkpoint with a diverged state.
    return checkpointer.save(int(counter.get("learner_steps")), {
        "learner_state": learner.save()._asdict(), "counts": counter.save()})

  periodic = local.PeriodicCheckpoint(save_checkpoint, config.checkpoint_every_s)
  last_print = time.time()
  last_steps = int(counter.get("learner_steps"))
  with local.Interruptible() as block:
    while counter.get("learner_steps") < config.steps:
      learner.step()
      now = time.time()
      if now - last_print >= config.log_every_s:
        steps = int(counter.get("learner_steps"))
        row = logger.last
        metrics = " | ".join(f"{k} {row[k]:.3f}" for k in ("loss", "nll", "kl", "action_mse")
                             if k in row)
        logged = f" (logged at step {int(row['learner_steps']):,})" if row else ""
        print(f"[npmp] {steps:,}/{config.steps:,} learner steps | "
              f"{(steps - last_steps) / (now - last_print):.0f} updates/s | {metrics}{logged}",
              flush=True)
        last_print, last_steps = now, steps
      periodic.maybe_save()
  local.end_learner_run("npmp", save_checkpoint, iterator, server, interrupted=block.interrupted,
                        learner_steps=int(counter.get("learner_steps")))
  summary = {"agent": acting.AGENT, "library": experiment.run_description["library"],
             "skills": experiment.run_description["skills"], "seed": config.seed,
             "learner_steps": int(counter.get("learner_steps")),
             "transitions": experiment.run_description["transitions"],
             # The learner's last logged row (rows are throttled to one per log_every_s).
             "last_logged_metrics": {k: float(v) for k, v in logger.last.items()}}
  with open(os.path.join(run_dir, local.SUMMARY_FILE), "w") as f:
    json.dump(summary, f, indent=2)
  return summary


def run_tracking(run_dir: str, skill: str, *, library: Optional[str] = None, episode: int = 0,
                 seed: int = 0, video_path: Optional[str] = None) -> Dict[str, Any]:
  """One-shot tracking of a library skill by the NPMP of `run_dir` (`agents.npmp.tracking`).

  The result is also written to `run_dir/tracking/<skill>_<episode>.json`.
  """
  saved = acting.load_npmp(run_dir)
  library_path = library or saved.run["library"]
  result = tracking.track(saved, library_lib.load_library(library_path), skill, episode=episode,
                          seed=seed, video_path=video_path)
  result["held_out"] = skill not in saved.run["skills"]
  os.makedirs(os.path.join(run_dir, "tracking"), exist_ok=True)
  with open(os.path.join(run_dir, "tracking", f"{skill}_{episode}.json"), "w") as f:
    json.dump(result, f, indent=2)
  return result
