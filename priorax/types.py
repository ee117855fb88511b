"""Shared types: nested arrays and the transition stored in replay."""

from typing import Any, Mapping, NamedTuple

import numpy as np

# A nested structure (dict / tuple / NamedTuple) of arrays, as dm-tree and jax.tree_util see it.
NestedArray = Any
# Observations are dicts of named arrays: priors select a subset of keys (information asymmetry).
Observation = Mapping[str, np.ndarray]
Params = Any
PRNGKey = Any


class Transition(NamedTuple):
  """An n-step transition (x_t, a_t, R_t, Γ_t, x_{t+m}) as stored by the n-step adder.

  With m = min(n, steps left in the episode), environment discounts d and agent discount γ:
    R_t = Σ_{k<m} γ^k (Π_{j<k} d_{t+j}) r_{t+k},    Γ_t = Π_{k<m} γ d_{t+k},
  so the bootstrapped target is R_t + Γ_t V(x_{t+m}) (Γ_t = 0 after a terminal step). `extras`
  holds what the actor adds (e.g. the behaviour log-probability).
  """

  observation: NestedArray
  action: NestedArray
  reward: NestedArray
  discount: NestedArray
  next_observation: NestedArray
  extras: NestedArray = ()
