"""One-shot tracking: the NPMP reproduces a reference it was not trained on, in closed loop.

Merel et al. 2019 (https://arxiv.org/abs/1811.11711), §5.1: at every step t the encoder reads the
K next frames of the reference relative to the body's *actual* state, r_t = [x_{t+k} − s_t]_k, and
proposes z_t = mean of q(z_t | z_{t−1}, r_t) (the deterministic evaluation: no latent noise); the
decoder acts tanh(μ_π(s_t, z_t)) in the skill's environment. The score is the return fraction
R_tracked / R_reference, the reference's own return being that of the expert that produced it.

Start state: the environment is reset with the seed whose initial observation equals the
reference's first one (`find_reset_seed` searches seeds 0 … `SEED_SEARCH` − 1; the library
builder rolls episode i out with seed `seed + 1 + i`), so both start in the same state. When no
seed reproduces it (a library made elsewhere), the given seed is used and the result records
`matched_initial_state: false`.
"""

import dataclasses
from typing import Any, Dict, List, Optional

import jax
import jax.numpy as jnp
import numpy as np

from priorax import envs
from priorax.agents.npmp import acting
from priorax.experts import library as library_lib
from priorax.replay import episodes

SEED_SEARCH = 64
# Largest absolute difference between two initial observations that counts as the same state.
_SAME_STATE_TOLERANCE = 1e-5


@dataclasses.dataclass(frozen=True)
class Reference:
  """A reference episode: states x_0 … x_T by key, its actions and return."""

  observations: Dict[str, np.ndarray]
  actions: np.ndarray
  episode_return: float


def load_reference(library: library_lib.Library, skill: library_lib.Skill,
                   episode: int) -> Reference:
  """Reads episode `episode` of the skill's rollouts."""
  paths = episodes.episode_paths(library.rollouts_dir(skill))
  if not 0 <= episode < len(paths):
    raise library_lib.LibraryError(f"skill {skill.name!r} has {len(paths)} reference episodes; "
                                   f"episode {episode} does not exist")
  steps = list(episodes.read_episode(paths[episode]))
  observations = {k: np.stack([t.observation[k] for _, t in steps])
                  for k in steps[0][1].observation}
  return Reference(observations=observations,
                   actions=np.stack([a for a, _ in steps[1:]]),
                   episode_return=float(sum(float(t.reward) for _, t in steps[1:])))


def find_reset_seed(skill: library_lib.Skill, first: Dict[str, np.ndarray]) -> Optional[int]:
  """The smallest seed < SEED_SEARCH whose reset observation equals `first`, or None."""
  for seed in range(SEED_SEARCH):
    observation = envs.make_environment(skill.environment, seed,
                                        action_repeat=skill.action_repeat).reset().observation
    if all(np.max(np.abs(observation[k] - first[k])) <= _SAME_STATE_TOLERANCE for k in first):
      return seed
  return None


def make_tracking_step(saved: acting.SavedNPMP):
  """Jitted (z_{t−1}, s_t by key, future reference frames [K] by key) -> (z_t, a_t)."""
  networks = saved.networks
  batch = lambda tree: jax.tree_util.tree_map(lambda x: jnp.asarray(x)[None], tree)

  @jax.jit
  def step(z_tm1, observation, future):
    observation = {k: observation[k] for k in networks.observation_keys}
    current = networks.proprio(batch(observation))  # [1, F]
    frames = networks.proprio(batch(future))  # [1, K, F]
    features = (frames - current[:, None]).reshape(1, -1)
    z_t = networks.encoder_apply(saved.params["encoder"], z_tm1[None], features).mean
    policy = networks.decoder_apply(saved.params["decoder"], batch(observation), z_t)
    return z_t[0], jnp.tanh(policy.mean[0])

  return step


def track(saved: acting.SavedNPMP, library: library_lib.Library, skill_name: str, *,
          episode: int = 0, seed: int = 0, video_path: Optional[str] = None) -> Dict[str, Any]:
  """Tracks one reference episode of a skill in closed loop (module docstring).

  Returns:
    skill, episode, tracked_return, reference_return, return_fraction, steps, seed,
    matched_initial_state, state_error (mean over steps of ‖s_t − x_t‖² on the proprioceptive
    keys) and, with `video_path`, frames.
  """
  skill = library.skill(skill_name)
  reference = load_reference(library, skill, episode)
  keys = saved.networks.observation_keys
  missing = [k for k in keys if k not in reference.observations]
  if missing:
    raise library_lib.LibraryError(f"skill {skill_name!r}'s references lack the NPMP's keys "
                                   f"{missing}")
  proprio = {k: reference.observations[k] for k in keys}
  matched = find_reset_seed(skill, {k: v[0] for k, v in reference.observations.items()})
  run_seed = seed if matched is None else matched
  environment = envs.make_environment(skill.environment, run_seed,
                                      action_repeat=skill.action_repeat)
  step = make_tracking_step(saved)
  length = len(reference.actions)
  timestep = environment.reset()
  frames: List[np.ndarray] = []
  render = lambda: environment.physics.render(height=240, width=320, camera_id=0)
  if video_path:
    envs.rendering.check_rendering()
    frames.append(render())
  z = jnp.zeros((saved.networks.latent_size,), jnp.float32)
  tracked_return, errors, t = 0.0, [], 0
  while not timestep.last() and t < length:
    indices = acting.reference_window(proprio, t, saved.config.num_future_frames)
    future = {k: v[list(indices)] for k, v in proprio.items()}
    errors.append(sum(float(np.sum(np.square(timestep.observation[k] - proprio[k][t])))
                      for k in keys))
    z, action = step(z, timestep.observation, future)
    timestep = environment.step(np.asarray(action))
    tracked_return += float(timestep.reward)
    t += 1
    if video_path:
      frames.append(render())
  if video_path:
    from priorax.utils import video  # Rendering is optional: import only when asked.
    video.frames_to_mp4(frames, video_path)
  fraction = tracked_return / reference.episode_return if reference.episode_return else float("nan")
  return {"skill": skill_name, "episode": episode, "tracked_return": tracked_return,
          "reference_return": reference.episode_return, "return_fraction": fraction, "steps": t,
          "seed": run_seed, "matched_initial_state": matched is not None,
          "state_error": float(np.mean(errors))}

