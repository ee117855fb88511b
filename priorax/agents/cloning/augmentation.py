"""Synthetic states around real ones, and the labels each method gives them.

Augmented policy cloning (APC; Galashov, Merel & Heess, NeurIPS 2022, https://arxiv.org/abs/2210.06219,
Eq. 5): around each state s_i of the data, M synthetic states s_i + δ_ij with δ_ij ~ N(0, σ_s² I)
in *normalised* observation space (so one σ_s suits every dimension), labelled by querying the
expert there. The same synthetic states labelled otherwise give the controls and variants:

  apc        a'_ij = μ_E(s_i + δ_ij)                  (the expert is queried)
  naive_abc  a'_ij = μ_E(s_i)                         (the original label: no expert query)
  lfpc       a'_ij = μ_E(s_i) + J_E(s_i) δ_ij          (Merel et al. 2019, linear-feedback policy
                                                       cloning, https://arxiv.org/abs/1811.11711)

Alternatively the physics state (positions and velocities) is perturbed, in units of its
per-dimension std over the data, and the simulator recomputes the observation: synthetic states
are then states the system can actually be in.
"""

from typing import Callable, NamedTuple

import chex
import dm_env
import jax
import jax.numpy as jnp
import numpy as np

from priorax import types
from priorax.agents.cloning import experts as experts_lib
from priorax.agents.cloning import types as cloning_types
from priorax.envs import wrappers


def data_std(batch: types.NestedArray) -> types.NestedArray:
  """Per-dimension std over the leading axis of every leaf ([N, ...] → [...]).

  A dimension constant over the data has std 0 and is left unperturbed (a perturbation off it
  would leave the data's support).
  """
  return jax.tree_util.tree_map(lambda x: np.std(np.asarray(x, np.float64), axis=0)
                                .astype(np.float32), batch)


def perturb_observations(key: chex.PRNGKey, observation: types.Observation,
                         std: types.Observation, scale: float,
                         num_perturbations: int) -> types.Observation:
  """M Gaussian perturbations of each observation, σ_s = `scale` in normalised units.

  s + δ with δ = scale · std ⊙ ε, ε ~ N(0, I): on the normalised observation (s − m)/std the
  perturbation is N(0, scale² I), whatever the normalising mean m.

  Args:
    key: PRNG key.
    observation: states by key, [N, *shape].
    std: the data's per-dimension std by key, [*shape].
    scale: σ_s > 0.
    num_perturbations: M.

  Returns:
    Perturbed states by key, [N, M, *shape].
  """
  keys = jax.random.split(key, len(observation))
  perturbed = {}
  for k, name in zip(keys, sorted(observation)):
    x = observation[name]
    noise = jax.random.normal(k, (x.shape[0], num_perturbations, *x.shape[1:]), x.dtype)
    perturbed[name] = x[:, None] + scale * std[name] * noise
  return perturbed


def _wrappers_and_raw(environment: dm_env.Environment):
  """The wrapper stack, outermost first, and the dm_control environment it wraps."""
  stack = []
  while isinstance(environment, wrappers.EnvironmentWrapper):
    stack.append(environment)
    environment = environment._environment  # pylint: disable=protected-access
  return stack, environment


def observation_from_physics(environment: dm_env.Environment) -> types.Observation:
  """The observation of the current physics state, as the wrapped environment would return it.

  The task computes it from the physics (dm_control's `task.get_observation`), then every
  wrapper's timestep conversion is applied, innermost first (float32, at least 1-D, kept keys).
  """
  stack, raw = _wrappers_and_raw(environment)
  if not (hasattr(raw, "physics") and hasattr(raw, "task")):
    raise ValueError(f"perturb_physics needs a dm_control environment (with physics and task); "
                     f"got {type(raw).__name__}")
  timestep = dm_env.restart(dict(raw.task.get_observation(raw.physics)))
  for wrapper in reversed(stack):
    timestep = wrapper._convert(timestep)  # pylint: disable=protected-access
  return timestep.observation


def perturb_physics(environment: dm_env.Environment, rng: np.random.Generator,
                    physics_states: np.ndarray, scale: float,
                    num_perturbations: int) -> types.Observation:
  """M perturbations of each physics state, with the observation recomputed by the simulator.

  The state x (MuJoCo's qpos, qvel, act) becomes x + scale · std ⊙ ε, std being each dimension's
  std over `physics_states`; `forward` then recomputes every derived quantity. The environment's
  physics is left in the last perturbed state: call this between episodes (the next reset
  overwrites it). Quaternion coordinates are perturbed like any other and renormalised by MuJoCo.

  Args:
    environment: the (wrapped) dm_control environment the states come from.
    rng: numpy generator of the noise.
    physics_states: [N, P], from `physics.get_state()`.
    scale: σ_s > 0.
    num_perturbations: M.

  Returns:
    Observations by key, [N, M, *shape], as the wrapped environment returns them.
  """
  _, raw = _wrappers_and_raw(environment)
  physics = raw.physics
  std = np.std(physics_states, axis=0)  # A coordinate constant over the data stays unperturbed.
  observations = []
  for state in physics_states:
    noise = rng.standard_normal((num_perturbations, state.shape[0]))
    for perturbed in state + scale * std * noise:
      with physics.reset_context():
        physics.set_state(perturbed)
      observations.append(observation_from_physics(environment))
  return {k: np.stack([o[k] for o in observations]).reshape(
      len(physics_states), num_perturbations, *observations[0][k].shape) for k in observations[0]}


class _Labels(NamedTuple):
  mean: chex.Array
  std: chex.Array


def make_labeller(expert: experts_lib.Expert, method: str) -> Callable[..., cloning_types.Demonstration]:
  """Returns jitted `label(observation [N], synthetic [N, M] or None) -> Demonstration [N, G]`.

  The group holds the real state first, then its M synthetic states, labelled per `method`
  (module docstring); BC and DAgger take no synthetic states (G = 1).
  """

  def flat(tree):  # [N, M, ...] -> [N·M, ...]
    return jax.tree_util.tree_map(lambda x: x.reshape(-1, *x.shape[2:]), tree)

  def label(observation, synthetic):
    real = expert.distribution(observation)
    n = real.mean.shape[0]
    if synthetic is None:
      return cloning_types.Demonstration(
          observation=jax.tree_util.tree_map(lambda x: x[:, None], observation),
          expert_mean=real.mean[:, None], expert_std=real.std[:, None],
          weight=jnp.ones((n, 1), jnp.float32))
    m = jax.tree_util.tree_leaves(synthetic)[0].shape[1]
    repeat = lambda x: jnp.repeat(x[:, None], m, axis=1)
    if method == "apc":
      queried = expert.distribution(flat(synthetic))
      labels = _Labels(queried.mean.reshape(n, m, -1), queried.std.reshape(n, m, -1))
    elif method == "naive_abc":
      labels = _Labels(repeat(real.mean), repeat(real.std))
    elif method == "lfpc":
      delta = jax.tree_util.tree_map(lambda s, x: s - x[:, None], synthetic, observation)
      expanded = expert.linearised_mean(flat(jax.tree_util.tree_map(repeat, observation)),
                                        flat(delta))
      # The std is not expanded: LFPC labels means; the real state's std stands in.
      labels = _Labels(expanded.reshape(n, m, -1), repeat(real.std))
    else:
      raise ValueError(f"method={method!r} makes no synthetic states")
    group = lambda real_leaf, synthetic_leaf: jnp.concatenate([real_leaf[:, None], synthetic_leaf],
                                                              axis=1)
    weight = jnp.concatenate([jnp.ones((n, 1)), jnp.full((n, m), 1.0 / m)], axis=1)
    return cloning_types.Demonstration(
        observation=jax.tree_util.tree_map(group, observation, synthetic),
        expert_mean=group(real.mean, labels.mean), expert_std=group(real.std, labels.std),
        weight=weight.astype(jnp.float32))

  return jax.jit(label)

