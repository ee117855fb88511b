"""The uniform default policy on the canonical action box [-1, 1]^d.

With π0 = U([-1, 1]^d), KL(π ‖ π0) = −H(π) + d·log 2, so KL regularisation is entropy regularisation
and the agent is SAC (Haarnoja et al. 2018, https://arxiv.org/abs/1801.01290). The entropy of a
tanh-Gaussian has no closed form: we use the single-sample estimator log π(a|s) + d·log 2 at the
reparameterised sample (unbiased for the KL, and its gradient is SAC's).
"""

import jax.numpy as jnp

from priorax.priors import base


def make_uniform_prior(action_size: int) -> base.Prior:
  log_volume = action_size * jnp.log(2.0)

  def kl(params, observation, policy, u, log_prob):
    del params, observation, policy, u
    return log_prob + log_volume

  return base.Prior(name="uniform", params=(), kl=kl)
