"""The step stored by the sequence adder.

Kept apart from the adders so that code reading sequences (learners, losses, their tests) can name
`Step` without importing Reverb or TensorFlow through `priorax.replay.adders`.
"""

from typing import NamedTuple

from priorax import types


class Step(NamedTuple):
  """One step t of an episode, as stored (stacked over time) by `SequenceAdder`.

  For a real step t < T of an episode x₀, a₀, r₀, d₀, x₁, …, x_T:
    observation = x_t, action = a_t, reward = r_t (reward after a_t),
    discount = d_t (environment discount after a_t: 0 after a terminal step, 1 after a
    truncation), start_of_episode = (t == 0), mask = 1, extras = e_t (what the actor added with
    a_t, e.g. a recurrent core state).
  The final observation x_T gets a step of its own with zero action, reward, discount and extras
  and mask = 1 (its observation is real). Padding steps after it are all zeros with mask = 0 and
  start_of_episode = False. So (x_t, a_t, r_t, d_t, x_{t+1}) is a real transition iff
  mask_{t+1} = 1 within the sequence.
  """

  observation: types.NestedArray  # [T, ...] per leaf once stacked into a sequence.
  action: types.NestedArray
  reward: types.NestedArray
  discount: types.NestedArray
  start_of_episode: types.NestedArray  # bool.
  mask: types.NestedArray  # float32: 1 for real steps (including x_T), 0 for padding.
  extras: types.NestedArray = ()
