"""The default-policy interface π0 used by KL-regularised agents.

A prior is data: pure functions of explicit parameters, so its KL enters the jitted update like any
other loss term. `kl` returns a per-example estimate of KL(π(.|s) ‖ π0(.|s)) for the policy's
pre-squash Gaussian at the reparameterised sample `u` whose log-density under π is `log_prob`.
"""

import dataclasses
from typing import Any, Callable

import chex

from priorax import types
from priorax.networks import distributions

# (prior_params, observation, policy_gaussian, u, log_prob) -> KL estimate [B].
KLFn = Callable[[Any, types.Observation, distributions.GaussianParams, chex.Array, chex.Array],
                chex.Array]


@dataclasses.dataclass(frozen=True)
class Prior:
  """A default policy π0.

  Attributes:
    name: registry name ("uniform", "fixed", ...).
    params: the prior's parameters (an empty tuple for the uniform prior); carried in the learner's
      TrainingState so a checkpoint is self-contained.
    kl: the KL estimator, see `KLFn`.
    trainable: whether the learner updates `params` (a learned default policy does; issue
      "learned behaviour priors" registers one).
  """

  name: str
  params: Any
  kl: KLFn
  trainable: bool = False
