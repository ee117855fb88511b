"""A fixed default policy: a trained tanh-Gaussian policy loaded from a saved run.

Both π and π0 are tanh-squashed diagonal Gaussians on the same squashing, so KL(π ‖ π0) equals the
closed-form KL of their pre-squash Gaussians (KL is invariant under the bijection tanh): exact, with
no sampling noise. π0 sees the observation keys it was trained with.
"""

from typing import Any, Optional, Sequence

from priorax.networks import policies
from priorax.priors import base


def make_fixed_prior(params: Any, *, action_size: int, hidden_sizes: Sequence[int],
                     observation_keys: Optional[Sequence[str]], layer_norm: bool,
                     min_scale: float) -> base.Prior:
  """Builds π0 from a policy network's parameters and the architecture it was trained with."""
  network = policies.make_gaussian_policy(action_size, hidden_sizes,
                                          observation_keys=observation_keys,
                                          layer_norm=layer_norm, min_scale=min_scale)
  return base.Prior(name="fixed", params=params, kl=base.closed_form_gaussian_kl(network.apply))
