"""A trained NPMP read back from its run directory, and its frozen decoder as a low level.

Reuse (Merel et al. 2019, §4, https://arxiv.org/abs/1811.11711): a new high-level policy, trained
with RL on a new task, outputs the latent z that the frozen decoder — the motor primitive — turns
into actions. `LowLevelWrapper` puts the decoder inside the environment, so any agent (`kl_svg0`
unchanged) learns the high level: its action a ∈ [−1, 1]^Z is the latent z = b·a, with
b = `latent_bound` (≈ ±3, MoCapAct's clipping of the high level's z), and the decoder acts
tanh(μ_π(s, z)), its mean action, at every step of the environment.
"""

from typing import Any, Dict, NamedTuple, Optional, Tuple

import dm_env
import jax
import jax.numpy as jnp
import numpy as np
from dm_env import specs as dm_specs

from priorax.agents.npmp import config as config_lib
from priorax.agents.npmp import networks as networks_lib
from priorax.envs import wrappers
from priorax.launchers import overrides
from priorax.utils import checkpointing

AGENT = "npmp"
# Latents reachable by the high level: z ∈ [−3, 3]^Z, about 3σ of the prior N(0, I).
LATENT_BOUND = 3.0


class SavedNPMP(NamedTuple):
  """The latest checkpoint of an NPMP run.

  Attributes:
    networks: rebuilt with the run's config and shapes.
    params: {"encoder": ..., "decoder": ...}.
    config: the run's `NPMPConfig`.
    run: its config.json (library, skills, observation_shapes, action_size, action_repeat).
  """

  networks: networks_lib.NPMPNetworks
  params: Any
  config: config_lib.NPMPConfig
  run: Dict[str, Any]


def load_npmp(run_dir: str, *, name: str = "--run-dir") -> SavedNPMP:
  """Reads an NPMP run (`priorax npmp`); `name` is the option quoted in errors."""
  run, data = checkpointing.load_run(run_dir, field=name, agent=AGENT)
  config = overrides.apply_overrides(config_lib.NPMPConfig, {}, run["agent_config"])
  shapes = {k: tuple(v) for k, v in run["observation_shapes"].items()}
  networks = networks_lib.make_networks(shapes, int(run["action_size"]), config)
  return SavedNPMP(networks, data["learner_state"]["params"], config, run)


def make_decoder_action(saved: SavedNPMP):
  """Jitted (observation of one step by key, z [Z]) -> tanh(μ_π(s, z)) [D]."""
  batch = lambda tree: jax.tree_util.tree_map(lambda x: jnp.asarray(x)[None], tree)

  @jax.jit
  def act(observation, z):
    observation = {k: observation[k] for k in saved.networks.observation_keys}
    policy = saved.networks.decoder_apply(saved.params["decoder"], batch(observation), z[None])
    return jnp.tanh(policy.mean[0])

  return act


class LowLevelWrapper(wrappers.EnvironmentWrapper):
  """The environment seen through a frozen NPMP decoder: actions are latents (module docstring).

  Each action is held for `latent_repeat` decoder steps (rewards summed, as `ActionRepeatWrapper`);
  observations are the environment's own (the task's keys, the proprioceptive ones among them).
  """

  def __init__(self, environment: dm_env.Environment, saved: SavedNPMP, *,
               latent_bound: float = LATENT_BOUND, latent_repeat: int = 1):
    super().__init__(environment)
    missing = [k for k in saved.networks.observation_keys
               if k not in environment.observation_spec()]
    if missing:
      raise ValueError(f"the decoder reads observation keys {missing} that this environment lacks "
                       f"(it has {sorted(environment.observation_spec())})")
    if not latent_bound > 0:
      raise ValueError(f"latent_bound={latent_bound} must be > 0")
    wrappers.check_action_repeat(latent_repeat)
    self._act = make_decoder_action(saved)
    self._latent_size = saved.networks.latent_size
    self._latent_bound = latent_bound
    self._latent_repeat = latent_repeat
    self._observation: Optional[Dict[str, np.ndarray]] = None

  def reset(self) -> dm_env.TimeStep:
    timestep = self._environment.reset()
    self._observation = timestep.observation
    return timestep

  def step(self, action) -> dm_env.TimeStep:
    z = self._latent_bound * jnp.clip(jnp.asarray(action, jnp.float32), -1.0, 1.0)
    reward = 0.0
    for _ in range(self._latent_repeat):
      timestep = self._environment.step(np.asarray(self._act(self._observation, z)))
      self._observation = timestep.observation
      reward += timestep.reward
      if timestep.last():
        break
    return timestep._replace(reward=np.asarray(reward, np.float32))

  def action_spec(self) -> dm_specs.BoundedArray:
    return dm_specs.BoundedArray((self._latent_size,), np.float32, -1.0, 1.0, "latent")


def decoder_action_repeat(saved: SavedNPMP) -> int:
  """The control step the decoder was distilled at: the library's action repeat."""
  return int(saved.run.get("action_repeat", 1))


def reference_window(reference: Dict[str, np.ndarray], t: int,
                     num_future_frames: int) -> Tuple[int, ...]:
  """Indices of x_{t+1} … x_{t+K} in a reference of T + 1 states, the last repeated past its end."""
  last = len(next(iter(reference.values()))) - 1
  return tuple(min(t + k, last) for k in range(1, num_future_frames + 1))


def make_low_level_environment(name: str, seed: int, low_level: str, *,
                               latent_repeat: int = 1) -> LowLevelWrapper:
  """Environment `name` at the decoder's control step, seen through the NPMP of run `low_level`
  (`priorax train --low-level RUN`): the high level's action is z, held `latent_repeat` steps."""
  from priorax import envs  # pylint: disable=g-import-not-at-top  # Keeps this module env-free.
  saved = load_npmp(low_level, name="--low-level")
  environment = envs.make_environment(name, seed, action_repeat=decoder_action_repeat(saved))
  return LowLevelWrapper(environment, saved, latent_repeat=latent_repeat)
