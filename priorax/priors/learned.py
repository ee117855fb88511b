"""A learned default policy with information asymmetry: π0(a | x_D).

Galashov et al. 2019, "Information asymmetry in KL-regularized RL",
https://arxiv.org/abs/1905.01240.
π0 is a tanh-Gaussian policy network (the same architecture family as the agent's policy) that sees
only the observation keys x_D ⊂ x, e.g. proprioception without the goal. It is trained by
distilling the policy on replayed states,

  L(φ) = E_{s~replay}[ KL(sg π(.|s) ‖ π0_φ(.|s_D)) ],

i.e. the regulariser of the KL-regularised objective (Eq. 1) minimised over π0 with π held fixed;
the agent's loss that does this is `priorax.agents.kl_svg0.losses.prior_loss`. Denied some keys, π0
cannot copy π and learns the behaviour shared across the values of the hidden keys (the
asymmetry is the point: a π0 seeing everything collapses onto π and regularises nothing).

Both π and π0 are tanh-Gaussians on the same squashing, so KL(π ‖ π0) is the closed-form KL of the
pre-squash Gaussians (exact, see `priors.fixed`), and differentiable in π0's params.
"""

from typing import Any, Mapping, Sequence

import numpy as np

from priorax.networks import policies
from priorax.priors import base


def check_observation_keys(observation_keys: Sequence[str], observation_spec: Mapping[str, Any],
                           name: str = "prior_observation_keys") -> None:
  """Raises ValueError naming an unknown key and the valid ones (at start, not inside jit)."""
  if not observation_keys:
    raise ValueError(f"{name}={tuple(observation_keys)!r} must name at least one observation key; "
                     f"valid keys: {sorted(observation_spec)}")
  for key in observation_keys:
    if key not in observation_spec:
      raise ValueError(f"{name}: unknown observation key {key!r}; valid keys: "
                       f"{sorted(observation_spec)}")


def make_learned_prior(observation_spec: Mapping[str, Any], *, action_size: int,
                       hidden_sizes: Sequence[int], observation_keys: Sequence[str],
                       layer_norm: bool, min_scale: float) -> base.Prior:
  """Builds a trainable π0(a | x_D) seeing `observation_keys` (x_D) of `observation_spec`.

  Args:
    observation_spec: the environment's observation specs by key (anything with `.shape`).
    action_size: D.
    hidden_sizes, layer_norm, min_scale: π0's torso and Gaussian head
      (`networks.make_gaussian_policy`).
    observation_keys: x_D, the keys π0 sees; each must be in `observation_spec`.

  Returns:
    A `Prior` with `trainable=True` whose params the learner draws with `init(key)`.
  """
  check_observation_keys(observation_keys, observation_spec)
  network = policies.make_gaussian_policy(action_size, hidden_sizes,
                                          observation_keys=tuple(observation_keys),
                                          layer_norm=layer_norm, min_scale=min_scale)
  # π0 reads only its keys, so only they are needed to initialise it.
  dummy = {k: np.zeros((1, *observation_spec[k].shape), np.float32) for k in observation_keys}
  return base.Prior(name="learned", params=None, kl=base.closed_form_gaussian_kl(network.apply),
                    trainable=True, init=lambda key: network.init(key, dummy))
