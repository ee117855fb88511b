"""The tanh-Gaussian policy network shared by agents and priors (so a saved policy can be rebuilt)."""

from typing import Optional, Sequence

import haiku as hk

from priorax.networks import heads
from priorax.networks import torsos


def make_gaussian_policy(action_size: int, hidden_sizes: Sequence[int], *,
                         observation_keys: Optional[Sequence[str]] = None,
                         layer_norm: bool = True, min_scale: float = 1e-3) -> hk.Transformed:
  """Returns `(init, apply)`; `apply(params, observation) -> GaussianParams` (pre-tanh, [B, D]).

  `observation_keys` selects what the network sees (None: every key), which is how a prior is made
  blind to task information.
  """

  def forward(observation):
    inputs = torsos.concat_observation(observation, observation_keys)
    embedding = torsos.LayerNormMLP(hidden_sizes, layer_norm=layer_norm)(inputs)
    return heads.GaussianHead(action_size, min_scale=min_scale)(embedding)

  return hk.without_apply_rng(hk.transform(forward))
