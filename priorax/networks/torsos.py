"""Observation torsos: select and concatenate named observation keys, then an MLP.

Observations stay dicts all the way into the networks, so each network (policy, critic, prior) can see
its own subset of keys; this is how information asymmetry (Galashov et al. 2019) is expressed.
"""

from typing import Mapping, Optional, Sequence

import chex
import haiku as hk
import jax
import jax.numpy as jnp


def concat_observation(observation: Mapping[str, chex.Array],
                       keys: Optional[Sequence[str]] = None) -> chex.Array:
  """Flattens the named keys (all, in sorted order, when `keys` is None) into [B, F].

  Every observation array has a leading batch axis; trailing axes are flattened.
  """
  names = sorted(observation) if keys is None else list(keys)
  missing = [k for k in names if k not in observation]
  if missing:
    raise ValueError(f"observation keys {missing} not found; available: {sorted(observation)}")
  parts = [jnp.reshape(observation[k], (observation[k].shape[0], -1)) for k in names]
  return jnp.concatenate(parts, axis=-1).astype(jnp.float32)


class LayerNormMLP(hk.Module):
  """Linear → LayerNorm → tanh, then ELU MLP (Acme's `LayerNormMLP`); or a plain ReLU MLP.

  The first layer's LayerNorm keeps inputs of very different scales (joint angles, velocities,
  target positions) usable without observation normalisation.
  """

  def __init__(self, hidden_sizes: Sequence[int], *, layer_norm: bool = True,
               name: Optional[str] = None):
    super().__init__(name=name)
    if not hidden_sizes:
      raise ValueError(f"hidden_sizes must be non-empty, got {hidden_sizes!r}")
    self._hidden_sizes = tuple(hidden_sizes)
    self._layer_norm = layer_norm

  def __call__(self, inputs: chex.Array) -> chex.Array:
    """Maps [B, F] to [B, hidden_sizes[-1]]."""
    if not self._layer_norm:
      return hk.nets.MLP(self._hidden_sizes, activation=jax.nn.relu, activate_final=True)(inputs)
    h = hk.Linear(self._hidden_sizes[0], w_init=hk.initializers.VarianceScaling(1.0, "fan_avg",
                                                                                  "uniform"))(inputs)
    h = jnp.tanh(hk.LayerNorm(axis=-1, create_scale=True, create_offset=True)(h))
    if len(self._hidden_sizes) > 1:
      h = hk.nets.MLP(self._hidden_sizes[1:], activation=jax.nn.elu, activate_final=True)(h)
    return h
