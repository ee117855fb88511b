"""Experts to distil: trained priorax policies and scripted controllers, as pure JAX functions.

An expert is a Gaussian policy on pre-tanh actions, π_E(u|s) = N(μ_E(s), σ_E(s)²), acting with
a = tanh(u) in the canonical box (the family of every priorax policy). Everything the cloning
methods ask of it is a pure, batched function of its params, so it runs inside jit:
the mean action tanh(μ_E(s)), the full distribution, the Jacobian J_E(s) = ∂μ_E/∂s, and the
first-order expansion μ_E(s) + J_E(s)·δ that LFPC labels with (computed by one forward-mode
`jax.jvp`, without forming J_E).
"""

import dataclasses
from typing import Any, Callable, Mapping, Optional

import chex
import jax
import jax.numpy as jnp
import numpy as np

from priorax import types
from priorax.agents import saved_policy
from priorax.networks import distributions
from priorax.networks import torsos

# (params, observation [B, ...] by key) -> pre-tanh GaussianParams [B, D].
ApplyFn = Callable[[Any, types.Observation], distributions.GaussianParams]


@dataclasses.dataclass(frozen=True)
class Expert:
  """A Gaussian expert on pre-tanh actions.

  Attributes:
    name: where it comes from (a run directory, "linear", "scripted:<env>").
    params: its parameters (a pytree).
    apply: see `ApplyFn`; examples must not interact (row-wise networks), so batched Jacobians
      and expansions are per example.
    action_size: D.
    observation_keys: the keys it reads (None: all of them).
    run: the config.json of the run it was loaded from, or {}.
  """

  name: str
  params: Any
  apply: ApplyFn
  action_size: int
  observation_keys: Optional[tuple] = None
  run: Mapping[str, Any] = dataclasses.field(default_factory=dict)

  def distribution(self, observation: types.Observation) -> distributions.GaussianParams:
    """π_E(.|s) before the tanh: mean and std [B, D]."""
    return self.apply(self.params, observation)

  def mean_action(self, observation: types.Observation) -> chex.Array:
    """tanh(μ_E(s)) [B, D], the action of the deterministic expert."""
    return jnp.tanh(self.distribution(observation).mean)

  def jacobian(self, observation: types.Observation) -> Mapping[str, chex.Array]:
    """J_E(s) = ∂μ_E/∂s per observation key: [B, D, *shape of the key]."""

    def mean_of_one(single):
      batched = jax.tree_util.tree_map(lambda x: x[None], single)
      return self.distribution(batched).mean[0]

    return jax.vmap(jax.jacrev(mean_of_one))(observation)

  def linearised_mean(self, observation: types.Observation,
                      delta: types.Observation) -> chex.Array:
    """μ_E(s) + J_E(s)·δ [B, D] (Merel et al. 2019, LFPC, https://arxiv.org/abs/1811.11711).

    One `jax.jvp` gives the primal μ_E(s) and the tangent J_E(s)·δ together; exact for an expert
    whose μ_E is linear in s.
    """
    mean, tangent = jax.jvp(lambda s: self.distribution(s).mean, (observation,), (delta,))
    return mean + tangent


def load_expert(run_dir: str) -> Expert:
  """The latest checkpoint's policy of a `kl_svg0` run (or of a distilled student)."""
  saved = saved_policy.load_saved_policy(run_dir, name="--expert")
  return Expert(name=run_dir, params=saved.params, apply=saved.network.apply,
                action_size=saved.action_size, observation_keys=saved.observation_keys,
                run=saved.run)


def make_linear_expert(weights: Mapping[str, np.ndarray], bias: np.ndarray,
                       std: float) -> Expert:
  """μ_E(s) = Σ_k W_k s_k + b, σ_E = std: a linear feedback controller.

  Args:
    weights: per observation key, W_k of shape [D, F_k] (F_k: the key's flattened size).
    bias: b [D].
    std: the constant std σ_E > 0 of every action dimension.
  """
  if not std > 0:
    raise ValueError(f"std={std} must be > 0")
  keys = tuple(sorted(weights))
  bias = np.asarray(bias, np.float32)
  params = {"weights": {k: np.asarray(weights[k], np.float32) for k in keys}, "bias": bias}
  for k in keys:
    if params["weights"][k].ndim != 2 or params["weights"][k].shape[0] != bias.shape[0]:
      raise ValueError(f"weights[{k!r}] has shape {params['weights'][k].shape}; expected "
                       f"[{bias.shape[0]}, features of {k!r}]")

  def apply(params, observation):
    mean = params["bias"] + sum(
        torsos.concat_observation(observation, [k]) @ params["weights"][k].T for k in keys)
    return distributions.GaussianParams(mean, jnp.full_like(mean, std))

  return Expert(name="linear", params=params, apply=apply, action_size=int(bias.shape[0]),
                observation_keys=keys)


# Proportional-derivative gains of the point-mass controller: u = −k_p·x − k_d·ẋ (pre-tanh), with
# the target at the origin. Chosen by hand for dmc:point_mass-easy.
_POINT_MASS_GAINS = (5.0, 1.0)
_SCRIPTED_STD = 0.1


def make_scripted_expert(environment_name: str) -> Expert:
  """A hand-written controller for tasks that have an obvious one.

  `dmc:point_mass-easy` and `dmc:point_mass-hard`: a PD controller driving the mass to the
  target at the origin (each actuator pushes along one axis, so the gains are diagonal).

  Raises:
    ValueError: no scripted expert exists for the environment (the message lists those that do).
  """
  if environment_name in ("dmc:point_mass-easy", "dmc:point_mass-hard"):
    k_p, k_d = _POINT_MASS_GAINS
    expert = make_linear_expert({"position": -k_p * np.eye(2), "velocity": -k_d * np.eye(2)},
                                np.zeros(2), _SCRIPTED_STD)
    return dataclasses.replace(expert, name=f"scripted:{environment_name}")
  raise ValueError(f"no scripted expert for {environment_name!r}; scripted experts exist for "
                   f"dmc:point_mass-easy, dmc:point_mass-hard")
