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
  """An n-step transition (x_t, a_t, R_t, Γ_t, x_{t+n}) as stored by the n-step adder.

  `reward` is the discounted n-step sum Σ_{k<n} γ^k r_{t+k} (env discounts included) and `discount`
  the product Π_{k<n} d_{t+k} of environment discounts, so the agent's bootstrap factor is
  `discount * γ^n`. `extras` holds what the actor adds (e.g. the behaviour log-probability).
  """

  observation: NestedArray
  action: NestedArray
  reward: NestedArray
  discount: NestedArray
  next_observation: NestedArray
  extras: NestedArray = ()
