"""The default-policy interface π0 used by KL-regularised agents.

A prior is data: pure functions of explicit parameters, so its KL enters the jitted update like any
other loss term. `kl` returns a per-example estimate of KL(π(.|s) ‖ π0(.|s)) for the policy's
pre-squash Gaussian at the reparameterised sample `u` whose log-density under π is `log_prob`.
"""

import dataclasses
from typing import Any, Callable, Optional

import chex

from priorax import types
from priorax.networks import distributions

# (prior_params, observation, policy_gaussian, u, log_prob) -> KL estimate [B].
KLFn = Callable[[Any, types.Observation, distributions.GaussianParams, chex.Array, chex.Array],
                chex.Array]
# (prior_params, observation) -> π0's pre-squash Gaussian [B, D].
GaussianApplyFn = Callable[[Any, types.Observation], distributions.GaussianParams]


@dataclasses.dataclass(frozen=True)
class Prior:
  """A default policy π0.

  Attributes:
    name: registry name ("uniform", "fixed", "learned").
    params: the prior's parameters (an empty tuple for the uniform prior); carried in the learner's
      TrainingState so a checkpoint is self-contained. None for a prior made with `init`.
    kl: the KL estimator, see `KLFn`; differentiable in the prior's params when `trainable`.
    trainable: whether the learner updates the params (by distilling the policy into π0).
    init: key -> fresh params, for a prior whose params the learner initialises from its own key
      (the learned prior); None when `params` is given.
  """

  name: str
  params: Any
  kl: KLFn
  trainable: bool = False
  init: Optional[Callable[[chex.PRNGKey], Any]] = None

  def __post_init__(self):
    if (self.params is None) == (self.init is None):
      raise ValueError(f"prior {self.name!r}: give exactly one of params and init")


def closed_form_gaussian_kl(apply: GaussianApplyFn) -> KLFn:
  """KL(π ‖ π0) for a π0 that is a tanh-Gaussian on π's squashing: the exact pre-squash KL.

  KL is invariant under the bijection tanh, so KL(tanh#N_π ‖ tanh#N_π0) = KL(N_π ‖ N_π0), in
  closed form (`distributions.gaussian_kl`); the sample `u` and its log-density are not needed.
  """

  def kl(prior_params, observation, policy, u, log_prob):
    del u, log_prob
    return distributions.gaussian_kl(policy, apply(prior_params, observation))

  return kl
