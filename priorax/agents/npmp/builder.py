"""Wires NPMP distillation: a Reverb table of reference windows filled from an expert library,
the dataset feeding the learner, the networks and the learner.

Each skill's reference episodes (`priorax.experts.library`) are fed with
`priorax.replay.episodes.replay_into` through `LibraryEpisodeAdder`, which keeps the library's
proprioceptive keys and, with LFPC, adds perturbed states and their linear-feedback labels as the
steps' extras, into a `SequenceAdder` writing windows of T + K steps.
"""

from typing import Any, Dict, Iterator, List, Optional, Tuple

import dm_env
import jax
import numpy as np
import reverb
from dm_env import specs as dm_specs

from priorax import replay
from priorax import specs
from priorax.agents.cloning import augmentation
from priorax.agents.cloning import experts as experts_lib
from priorax.agents.npmp import config as config_lib
from priorax.agents.npmp import learning
from priorax.agents.npmp import losses
from priorax.agents.npmp import networks as networks_lib
from priorax.experts import library as library_lib
from priorax.replay import episodes
from priorax.utils import counting
from priorax.utils import loggers

REPLAY_TABLE = "npmp_windows"
# Items the table holds at most: windows of a library of tens of skills of ~10⁵ steps each.
_MAX_WINDOWS = 5_000_000


def library_spec(library: library_lib.Library) -> specs.EnvironmentSpec:
  """The spec of the stored steps: the proprioceptive keys' and actions' shapes (float32), read
  from the first reference episode."""
  path = episodes.episode_paths(library.rollouts_dir(library.skills[0]))[0]
  steps = episodes.read_episode(path)
  _, first = next(steps)
  action, _ = next(steps)
  missing = [k for k in library.observation_keys if k not in first.observation]
  if missing:
    raise library_lib.LibraryError(f"{path} lacks the library's observation keys {missing}")
  return specs.EnvironmentSpec(
      observations={k: dm_specs.Array(np.shape(first.observation[k]), np.float32, k)
                    for k in library.observation_keys},
      actions=dm_specs.Array(np.shape(action), np.float32, "action"),
      rewards=dm_specs.Array((), np.float32, "reward"),
      discounts=dm_specs.Array((), np.float32, "discount"))


def lfpc_extras_spec(spec: specs.EnvironmentSpec, num_perturbations: int) -> Dict[str, Any]:
  """The extras of a step with LFPC: M perturbed states by key and their labels [M, D]."""
  return {losses.LFPC_OBSERVATION: {k: dm_specs.Array((num_perturbations, *s.shape), np.float32)
                                    for k, s in spec.observations.items()},
          losses.LFPC_ACTION: dm_specs.Array((num_perturbations, *spec.actions.shape),
                                             np.float32)}


class LFPCLabeller:
  """Perturbs a skill's states and labels them with its expert, an episode at a time.

  δ ~ N(0, (scale · std)²) on the proprioceptive keys only (std: per dimension, over all the
  skill's reference states; `augmentation.perturb_observations`), labelled
  μ_E(s) + J_E(s) δ (`augmentation.make_labeller(expert, "lfpc")`).
  """

  def __init__(self, expert: experts_lib.Expert, std: Dict[str, np.ndarray],
               config: config_lib.NPMPConfig, key: jax.Array):
    self._label = augmentation.make_labeller(expert, "lfpc")
    self._std = std
    self._scale = config.lfpc_scale
    self._num_perturbations = config.lfpc_perturbations
    self._key = key

  def __call__(self, observation: Dict[str, np.ndarray]) -> Dict[str, Any]:
    """observation: every key of the skill's environment, [N, ...] -> extras [N, ...]."""
    self._key, key = jax.random.split(self._key)
    perturbed = augmentation.perturb_observations(
        key, {k: observation[k] for k in self._std}, self._std, self._scale,
        self._num_perturbations)
    synthetic = {k: perturbed[k] if k in perturbed else np.repeat(
        observation[k][:, None], self._num_perturbations, axis=1) for k in observation}
    demonstration = jax.device_get(self._label(observation, synthetic))
    return {losses.LFPC_OBSERVATION: {k: demonstration.observation[k][:, 1:] for k in self._std},
            losses.LFPC_ACTION: demonstration.expert_mean[:, 1:]}


def skill_std(library: library_lib.Library, skill: library_lib.Skill) -> Dict[str, np.ndarray]:
  """The per-dimension std of the skill's reference states, by proprioceptive key."""
  states = {k: [] for k in library.observation_keys}
  for path in episodes.episode_paths(library.rollouts_dir(skill)):
    for _, timestep in episodes.read_episode(path):
      for k in states:
        states[k].append(timestep.observation[k])
  return augmentation.data_std({k: np.stack(v) for k, v in states.items()})


class LibraryEpisodeAdder:
  """An adder (add_first/add/reset) between `episodes.replay_into` and a `SequenceAdder`.

  It buffers an episode, then writes it with only the proprioceptive `keys`, in float32, and
  with each step's extras from `labeller(all observations of the episode)` (none without one).
  """

  def __init__(self, adder: Any, keys: Tuple[str, ...], labeller: Optional[LFPCLabeller] = None):
    self._adder = adder
    self._keys = keys
    self._labeller = labeller
    self._first: Optional[dm_env.TimeStep] = None
    self._steps: List[Tuple[np.ndarray, dm_env.TimeStep]] = []

  def add_first(self, timestep: dm_env.TimeStep) -> None:
    self._first, self._steps = timestep, []

  def add(self, action, next_timestep: dm_env.TimeStep, extras=()) -> None:
    del extras
    self._steps.append((action, next_timestep))
    if next_timestep.last():
      self._flush()

  def reset(self) -> None:
    if self._first is not None and self._steps:
      self._flush()
      self._adder.reset()
    self._first, self._steps = None, []

  def _proprio(self, timestep: dm_env.TimeStep) -> dm_env.TimeStep:
    return timestep._replace(
        observation={k: np.asarray(timestep.observation[k], np.float32) for k in self._keys},
        reward=np.asarray(timestep.reward, np.float32),
        discount=np.asarray(timestep.discount, np.float32))

  def _flush(self) -> None:
    # States x_0 … x_{T−1} (those an action is taken in) get extras; x_T gets the adder's zeros.
    extras = [()] * len(self._steps)
    if self._labeller is not None:
      timesteps = [self._first] + [timestep for _, timestep in self._steps[:-1]]
      observation = {k: np.stack([np.asarray(t.observation[k], np.float32) for t in timesteps])
                     for k in self._first.observation}
      labelled = self._labeller(observation)
      extras = [jax.tree_util.tree_map(lambda x, i=i: np.asarray(x[i], np.float32), labelled)
                for i in range(len(self._steps))]
    self._adder.add_first(self._proprio(self._first))
    for (action, timestep), extra in zip(self._steps, extras):
      self._adder.add(np.asarray(action, np.float32), self._proprio(timestep), extra)
    self._first, self._steps = None, []


class NPMPBuilder:
  """Builder of NPMP distillation (the offline pieces of Acme's builder interface)."""

  def __init__(self, config: config_lib.NPMPConfig):
    self._config = config

  @property
  def config(self) -> config_lib.NPMPConfig:
    return self._config

  def make_networks(self, spec: specs.EnvironmentSpec) -> networks_lib.NPMPNetworks:
    return networks_lib.make_networks(
        {k: s.shape for k, s in spec.observations.items()},
        int(np.prod(spec.actions.shape)), self._config)

  def extras_spec(self, spec: specs.EnvironmentSpec) -> Any:
    return lfpc_extras_spec(spec, self._config.lfpc_perturbations) if self._config.lfpc else ()

  def make_replay_tables(self, spec: specs.EnvironmentSpec) -> List[reverb.Table]:
    signature = replay.SequenceAdder.signature(spec, self._config.window_length,
                                               self.extras_spec(spec))
    return [replay.make_uniform_table(REPLAY_TABLE, max_size=_MAX_WINDOWS, min_size_to_sample=1,
                                      signature=signature)]

  def make_adder(self, client: reverb.Client) -> replay.SequenceAdder:
    # Only full windows: every trained step then has its K future frames and a real action.
    return replay.SequenceAdder(client, REPLAY_TABLE, sequence_length=self._config.window_length,
                                period=self._config.sequence_period, pad_end_of_episode=False)

  def load_library(self, client: reverb.Client, library: library_lib.Library,
                   key: jax.Array) -> int:
    """Writes every skill's reference episodes into the table; returns the steps fed."""
    steps = 0
    for skill in library.skills:
      labeller = None
      if self._config.lfpc:
        key, skill_key = jax.random.split(key)
        labeller = LFPCLabeller(experts_lib.load_expert(library.expert_dir(skill)),
                                skill_std(library, skill), self._config, skill_key)
      adder = LibraryEpisodeAdder(self.make_adder(client), library.observation_keys, labeller)
      steps += episodes.replay_into(library.rollouts_dir(skill), adder)
    return steps

  def make_dataset_iterator(self, address: str) -> Iterator[Any]:
    return replay.make_dataset_iterator(address, REPLAY_TABLE, self._config.batch_size,
                                        device=jax.devices()[0])

  def make_learner(self, networks: networks_lib.NPMPNetworks, iterator: Iterator[Any],
                   key: jax.Array, counter: Optional[counting.Counter] = None,
                   logger: Optional[loggers.Logger] = None) -> learning.NPMPLearner:
    return learning.NPMPLearner(networks, iterator, key, self._config, counter=counter,
                                logger=logger)
