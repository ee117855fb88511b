"""The student's learner: one for every cloning method (the methods differ only in their data).

It consumes an iterator of `Demonstration` batches ([B, G, ...]) and never imports Reverb or
TensorFlow.
"""

from typing import Any, Iterator, NamedTuple, Optional

import chex
import jax
import jax.numpy as jnp
import optax

from priorax.agents import jitted_learner
from priorax.agents.cloning import losses
from priorax.agents.cloning import types as cloning_types
from priorax.utils import counting
from priorax.utils import loggers

NO_NONFINITE_STEP = jitted_learner.NO_NONFINITE_STEP


class TrainingState(NamedTuple):
  """The student's params, optimiser state and step; no randomness is needed.

  `policy_params` has the name of `kl_svg0`'s policy entry, so a student's checkpoint loads as a
  policy (`agents.saved_policy`).
  """

  policy_params: Any
  opt_state: Any
  steps: chex.Array
  # The first update whose loss was not finite (NO_NONFINITE_STEP while all were).
  first_nonfinite_step: chex.Array


def make_update_step(policy_apply, optimizer: optax.GradientTransformation, loss: str):
  """Returns the pure, jittable `update_step(state, batch) -> (state, metrics)`."""
  loss_and_grad = jax.value_and_grad(losses.cloning_loss, has_aux=True)

  def update_step(state: TrainingState, batch: cloning_types.Demonstration):
    (value, stats), grads = loss_and_grad(state.policy_params, batch, policy_apply=policy_apply,
                                          loss=loss)
    updates, opt_state = optimizer.update(grads, state.opt_state, state.policy_params)
    first_nonfinite_step = jnp.where(
        (state.first_nonfinite_step == NO_NONFINITE_STEP) & ~jnp.isfinite(value), state.steps,
        state.first_nonfinite_step)
    new_state = TrainingState(
        policy_params=optax.apply_updates(state.policy_params, updates), opt_state=opt_state,
        steps=state.steps + 1, first_nonfinite_step=first_nonfinite_step)
    return new_state, {"loss": value, "mean_squared_error": stats.mean_squared_error,
                       "student_std": stats.student_std}

  return update_step


class CloningLearner(jitted_learner.JittedLearner):
  """Fits the student π to the expert's labels by `losses.cloning_loss`."""

  def __init__(self, policy_init, policy_apply, iterator: Iterator[cloning_types.Demonstration],
               key: chex.PRNGKey, *, optimizer: optax.GradientTransformation, loss: str,
               counter: Optional[counting.Counter] = None,
               logger: Optional[loggers.Logger] = None):
    super().__init__(iterator, counter, logger)
    params = policy_init(key)
    self._update_step = jax.jit(make_update_step(policy_apply, optimizer, loss))
    self._state = TrainingState(policy_params=params, opt_state=optimizer.init(params),
                                steps=jnp.zeros((), jnp.int32),
                                first_nonfinite_step=jnp.asarray(NO_NONFINITE_STEP, jnp.int32))

  def _variables(self) -> dict:
    return {"policy": self._state.policy_params}
