"""`priorax library`: trains one `kl_svg0` expert per skill of a body and records its rollouts.

    priorax library --body walker --out libraries/walker [--skills speed_1,stand] [--steps N]
        [--episodes E] [--set batch_size=128 ...]

For each skill `s` (an environment `skill:<body>-<s>`, see `priorax.envs.skills`; for the body
`cmu_humanoid`, `loco:cmu_humanoid-<s>` with `s` = `track_<clip>`, tracking a clip of dm_control's
CMU mocap file when it is present, see `priorax.envs.locomotion`), in order:

1. train an expert with the local launcher into `OUT/<s>/run` (`priorax.launchers.local`; an
   interrupted run resumes from its checkpoint), measuring the process's CPU time;
2. roll out E episodes of its mean action tanh(μ(s)) (plus, if `rollout_noise` > 0, Gaussian noise
   of that std, clipped to [-1, 1]; the action recorded is the one executed) into
   `OUT/<s>/rollouts` with `priorax.replay.episodes.EpisodeWriter`;
3. rewrite `OUT/library.json` (`priorax.experts.library`) with the skill appended.

The result (format `priorax-expert-library/1`, `priorax.experts.library`):

  OUT/library.json          body, shared observation_keys, one entry per skill: environment,
                            action_repeat, expert and rollouts directories, episodes, transitions,
                            mean_return, train_env_steps, train_cpu_seconds
  OUT/<s>/run/              the expert's run directory (`experts.load_expert` reads it)
  OUT/<s>/rollouts/         episode_*.npz reference rollouts (`priorax.replay.episodes`)

Running the command again on the same OUT skips the skills already in `library.json` (trained for
at least --steps), resumes the one that was interrupted and builds the rest, so Ctrl-C or a crash
loses at most one skill's work since its last checkpoint. With a larger --steps it trains finished
experts further from their checkpoints (replay buffer included) and replaces their rollouts.
CPU seconds of a training interrupted by Ctrl-C or SIGTERM are kept in `OUT/<s>/cpu_seconds.json`
and added up when it resumes; a killed process loses those of its last session.
"""

import dataclasses
import json
import os
import shutil
import time
from typing import Dict, List, Mapping, Optional, Tuple

import jax
import jax.numpy as jnp
import numpy as np

from priorax import envs
from priorax.agents import registry as agent_registry
from priorax.agents.cloning import experts
from priorax.envs import locomotion
from priorax.envs import registry as env_registry
from priorax.envs import skills as skill_envs
from priorax.experts import library as library_format
from priorax.launchers import local
from priorax.launchers import overrides
from priorax.replay import episodes

AGENT = "kl_svg0"
# Trained in this order by default: the speeds bracket a held-out one (walker speed_1.5, cheetah
# speed_3) and include backwards motion, so a latent space from them interpolates.
DEFAULT_SKILLS: Dict[str, Tuple[str, ...]] = {
    "walker": ("stand", "speed_1", "speed_-1", "speed_2", "getup"),
    "cheetah": ("speed_2", "speed_-2", "speed_4", "speed_-1", "speed_1"),
    "humanoid": ("stand", "speed_1"),
}
_CPU_FILE = "cpu_seconds.json"
# Default tracking skills of the CMU humanoid: these walking clips, when the mocap file has them.
_DEFAULT_CLIPS = ("CMU_016_22", "CMU_016_23", "CMU_047_01", "CMU_069_01")
BODIES = (*skill_envs.BODIES, locomotion.BODY)


def environment_name(body: str, skill: str) -> str:
  """The registry name of a body's skill: `skill:<body>-<skill>` or `loco:cmu_humanoid-<skill>`."""
  if body == locomotion.BODY:
    return f"{locomotion.PREFIX}:{body}-{skill}"
  return skill_envs.environment_name(body, skill)


def observation_keys(body: str) -> Tuple[str, ...]:
  """The proprioceptive keys every skill of `body` observes."""
  if body == locomotion.BODY:
    return locomotion.PROPRIOCEPTION_KEYS
  return skill_envs.BODIES[body].observation_keys


def _check_skill(body: str, skill: str) -> None:
  """Raises UnknownEnvironmentError (or, without the mocap file, LibraryError) for a bad skill."""
  name = environment_name(body, skill)
  if body != locomotion.BODY:
    skill_envs.parse_name(name)
    return
  if not skill.startswith(locomotion.TRACK):
    raise overrides.ConfigError(f"skill {skill!r}: the {body} library is made of mocap tracking "
                                f"skills {locomotion.TRACK}<clip>")
  if locomotion.find_mocap_file() is None:
    raise library_format.LibraryError(locomotion.missing_mocap_message())
  if name not in locomotion.list_names():
    raise env_registry.unknown_environment_error(f"Unknown clip {skill!r}", name,
                                                 locomotion.list_names())


@dataclasses.dataclass(frozen=True)
class LibraryConfig:
  """What `build_library` makes.

  Attributes:
    body: one of `BODIES`: a body of `priorax.envs.skills.BODIES`, or "cmu_humanoid".
    out: the library directory.
    skills: skill names of the body (without "skill:<body>-"), in training order.
    steps: agent steps of each expert's training (each lasts `action_repeat` environment steps;
      the index records environment steps).
    episodes: reference episodes rolled out per skill.
    rollout_noise: std of the Gaussian noise added to the expert's mean action in rollouts.
    action_repeat: of training and rollouts.
    seed: of every expert (the rollouts use seed + 1, seed + 2, ...).
    agent_overrides: `kl_svg0` config fields as `--set` strings.
    eval_episodes: episodes of each expert's final evaluation by the launcher.
    checkpoint_every_s, log_every_s: as in `local.ExperimentConfig`.
  """
  body: str
  out: str
  skills: Tuple[str, ...]
  steps: int = 100_000
  episodes: int = 10
  rollout_noise: float = 0.0
  action_repeat: int = 2
  seed: int = 0
  agent_overrides: Mapping[str, str] = dataclasses.field(default_factory=dict)
  eval_episodes: int = 1
  checkpoint_every_s: float = 300.0
  log_every_s: float = 30.0

  def __post_init__(self):
    if self.body not in BODIES:
      raise overrides.ConfigError(f"unknown body {self.body!r}; bodies: {', '.join(BODIES)}")
    if not self.skills:
      raise overrides.ConfigError("no skills given")
    if len(set(self.skills)) != len(self.skills):
      raise overrides.ConfigError(f"skills repeat: {list(self.skills)}")
    for skill in self.skills:
      _check_skill(self.body, skill)
    for name in ("steps", "episodes", "action_repeat", "eval_episodes"):
      if getattr(self, name) < 1:
        raise overrides.ConfigError(f"{name}={getattr(self, name)} must be >= 1")
    if self.rollout_noise < 0:
      raise overrides.ConfigError(f"rollout_noise={self.rollout_noise} must be >= 0")


def _experiment(config: LibraryConfig, skill: str, run_dir: str) -> local.ExperimentConfig:
  """The local launcher's experiment for one skill's expert."""
  entry = agent_registry.get_agent(AGENT)
  agent_config = overrides.apply_overrides(entry.config_class, dict(config.agent_overrides))
  name = environment_name(config.body, skill)
  return local.ExperimentConfig(
      agent=AGENT,
      builder=entry.builder_class(agent_config),
      environment_name=name,
      environment_factory=lambda seed: envs.make_environment(
          name, seed, action_repeat=config.action_repeat),
      run_dir=run_dir,
      seed=config.seed,
      max_actor_steps=config.steps,
      eval_every=config.steps,  # Only the final evaluation: the rollouts measure the expert.
      eval_episodes=config.eval_episodes,
      checkpoint_every_s=config.checkpoint_every_s,
      log_every_s=config.log_every_s,
      run_description={"action_repeat": config.action_repeat, "library": config.out})


def _read_cpu_seconds(skill_dir: str) -> float:
  path = os.path.join(skill_dir, _CPU_FILE)
  if not os.path.exists(path):
    return 0.0
  with open(path) as f:
    return float(json.load(f)["train_cpu_seconds"])


def _write_cpu_seconds(skill_dir: str, seconds: float) -> None:
  with open(os.path.join(skill_dir, _CPU_FILE), "w") as f:
    json.dump({"train_cpu_seconds": seconds}, f)


def train_expert(config: LibraryConfig, skill: str) -> Tuple[int, float]:
  """Trains (or resumes, or finds finished) the skill's expert; returns (env steps, CPU seconds).

  Environment steps count those of the environment (agent steps × action repeat).
  """
  skill_dir = os.path.join(config.out, skill)
  run_dir = os.path.join(skill_dir, "run")
  summary_path = os.path.join(run_dir, local.SUMMARY_FILE)
  cpu_seconds = _read_cpu_seconds(skill_dir)
  if os.path.exists(summary_path):
    with open(summary_path) as f:
      summary = json.load(f)
    if summary["actor_steps"] >= config.steps:
      return summary["actor_steps"] * config.action_repeat, cpu_seconds
  os.makedirs(skill_dir, exist_ok=True)
  start = time.process_time()
  try:
    summary = local.run_experiment(_experiment(config, skill, run_dir))
  finally:
    # Kept even when interrupted: the resumed run adds its own.
    cpu_seconds += time.process_time() - start
    _write_cpu_seconds(skill_dir, cpu_seconds)
  return summary["actor_steps"] * config.action_repeat, cpu_seconds


def roll_out(config: LibraryConfig, skill: str) -> Dict[str, float]:
  """Writes `config.episodes` episodes of the skill's expert into its (emptied) rollouts dir.

  Returns:
    {"episodes", "transitions", "mean_return"} of what was written.
  """
  run_dir = os.path.join(config.out, skill, "run")
  rollouts_dir = os.path.join(config.out, skill, "rollouts")
  shutil.rmtree(rollouts_dir, ignore_errors=True)  # A partial earlier attempt is redone whole.
  expert = experts.load_expert(run_dir)
  mean_action = jax.jit(lambda observation: expert.mean_action(
      jax.tree_util.tree_map(lambda x: jnp.asarray(x)[None], observation))[0])
  writer = episodes.EpisodeWriter(rollouts_dir)
  rng = np.random.default_rng(config.seed)
  returns, transitions = [], 0
  name = environment_name(config.body, skill)
  for index in range(config.episodes):
    environment = envs.make_environment(name, config.seed + 1 + index,
                                        action_repeat=config.action_repeat)
    timestep = environment.reset()
    writer.add_first(timestep)
    episode_return = 0.0
    while not timestep.last():
      action = np.asarray(mean_action(timestep.observation))
      if config.rollout_noise > 0:
        action = np.clip(action + config.rollout_noise * rng.standard_normal(action.shape), -1, 1)
      timestep = environment.step(action.astype(np.float32))
      writer.add(action.astype(np.float32), timestep)
      episode_return += float(timestep.reward)
      transitions += 1
    returns.append(episode_return)
  return {"episodes": config.episodes, "transitions": transitions,
          "mean_return": float(np.mean(returns))}


def _existing_skills(config: LibraryConfig) -> List[library_format.Skill]:
  """The skills already in OUT/library.json (none if there is no index yet)."""
  if not os.path.exists(os.path.join(config.out, library_format.INDEX)):
    return []
  existing = library_format.load_library(config.out)
  if existing.body != config.body:
    raise library_format.LibraryError(
        f"{config.out} is a library of body {existing.body!r}, not {config.body!r}; use another "
        f"--out")
  return list(existing.skills)


def build_library(config: LibraryConfig) -> library_format.Library:
  """Builds (or completes) the library of `config`; see the module docstring."""
  os.makedirs(config.out, exist_ok=True)
  done = _existing_skills(config)
  keys = observation_keys(config.body)
  library = None
  for number, skill in enumerate(config.skills, start=1):
    prefix = f"[library] {number}/{len(config.skills)} {skill}"
    index = next((i for i, entry in enumerate(done) if entry.name == skill), None)
    if index is not None:
      entry = done[index]
      if entry.action_repeat != config.action_repeat:
        raise library_format.LibraryError(
            f"skill {skill!r} of {config.out} was built with action repeat "
            f"{entry.action_repeat}, not {config.action_repeat}; use the same --action-repeat")
      if entry.train_env_steps >= config.steps * config.action_repeat:
        print(f"{prefix}: already in {config.out}, skipped", flush=True)
        continue
      print(f"{prefix}: training further, from {entry.train_env_steps:,} to "
            f"{config.steps * config.action_repeat:,} env steps", flush=True)
    else:
      print(f"{prefix}: training {config.steps:,} steps", flush=True)
    env_steps, cpu_seconds = train_expert(config, skill)
    rollouts = roll_out(config, skill)
    skill_entry = library_format.Skill(
        name=skill,
        environment=environment_name(config.body, skill),
        action_repeat=config.action_repeat,
        expert=os.path.join(skill, "run"),
        rollouts=os.path.join(skill, "rollouts"),
        episodes=rollouts["episodes"],
        transitions=rollouts["transitions"],
        mean_return=rollouts["mean_return"],
        train_env_steps=env_steps,
        train_cpu_seconds=cpu_seconds)
    if index is None:
      done.append(skill_entry)
    else:
      done[index] = skill_entry
    library = library_format.write_library(config.out, config.body, keys, done)
    print(f"{prefix}: mean return {rollouts['mean_return']:.1f} over {rollouts['episodes']} "
          f"episodes ({rollouts['transitions']:,} transitions); trained {env_steps:,} env steps "
          f"in {cpu_seconds:,.0f} CPU s", flush=True)
  if library is None:
    library = library_format.load_library(config.out)
  return library


def describe(library: library_format.Library) -> str:
  """A table of the library's skills: return, transitions, env steps, CPU seconds."""
  width = max([len("skill")] + [len(s.name) for s in library.skills])
  lines = [f"{'skill':<{width}} {'return':>8} {'transitions':>12} {'env steps':>10} {'CPU s':>8}"]
  for s in library.skills:
    lines.append(f"{s.name:<{width}} {s.mean_return:>8.1f} {s.transitions:>12,} "
                 f"{s.train_env_steps:>10,} {s.train_cpu_seconds:>8.0f}")
  return "\n".join(lines)


def parse_skills(body: str, text: Optional[str]) -> Tuple[str, ...]:
  """"a,b,c" -> ("a", "b", "c"); the body's default skills when `text` is None.

  The CMU humanoid's default is tracking a few walking clips (those of the mocap file among
  `_DEFAULT_CLIPS`, else its first two clips); without the mocap file it has none (LibraryError).
  """
  if text is None:
    if body == locomotion.BODY:
      clips = locomotion.tracking_clips()
      if not clips:
        raise library_format.LibraryError(locomotion.missing_mocap_message())
      chosen = [clip for clip in _DEFAULT_CLIPS if clip in clips] or list(clips[:2])
      return tuple(locomotion.TRACK + clip for clip in chosen)
    if body not in DEFAULT_SKILLS:
      raise overrides.ConfigError(f"unknown body {body!r}; bodies: {', '.join(BODIES)}")
    return DEFAULT_SKILLS[body]
  return tuple(s.strip() for s in text.split(",") if s.strip())
