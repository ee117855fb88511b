"""The item a distillation replay table stores."""

from typing import NamedTuple

from priorax import types


class Demonstration(NamedTuple):
  """A real state and the synthetic states made around it, each with the expert's label.

  Index 0 of the group axis G is the real state, 1…M the synthetic ones (G = 1 + M; G = 1 for BC
  and DAgger). Labels are pre-tanh: the action is tanh(expert_mean).

  Attributes:
    observation: the states by key, [G, *shape].
    expert_mean: the label μ [G, D] (the expert's mean, or its first-order expansion for LFPC).
    expert_std: the expert's std σ_E [G, D], used by the cross-entropy loss.
    weight: [G], 1 for the real state and 1/M for each synthetic one, so a group weighs as in
      APC's objective: log π(a|s) + (1/M) Σ_j log π(a'_j|s + δ_j).
  """

  observation: types.NestedArray
  expert_mean: types.NestedArray
  expert_std: types.NestedArray
  weight: types.NestedArray
