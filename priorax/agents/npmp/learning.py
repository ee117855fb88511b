"""The NPMP learner: encoder and decoder trained together by `losses.npmp_loss` with Adam.

It consumes an iterator of `Step` windows ([B, L, ...]) and never imports Reverb or TensorFlow.
"""

import functools
from typing import Any, Iterator, NamedTuple, Optional

import chex
import jax
import jax.numpy as jnp
import optax

from priorax.agents import jitted_learner
from priorax.agents.npmp import config as config_lib
from priorax.agents.npmp import losses
from priorax.agents.npmp import networks as networks_lib
from priorax.replay.types import Step
from priorax.utils import counting
from priorax.utils import loggers

NO_NONFINITE_STEP = jitted_learner.NO_NONFINITE_STEP


class TrainingState(NamedTuple):
  """Encoder and decoder params ({"encoder", "decoder"}), Adam state, RNG key, step count."""

  params: Any
  opt_state: Any
  key: chex.PRNGKey
  steps: chex.Array
  # The first update whose loss was not finite (NO_NONFINITE_STEP while all were).
  first_nonfinite_step: chex.Array


def make_update_step(networks: networks_lib.NPMPNetworks, optimizer: optax.GradientTransformation,
                     config: config_lib.NPMPConfig):
  """Returns the pure, jittable `update_step(state, window) -> (state, metrics)`."""
  loss_fn = functools.partial(
      losses.npmp_loss, networks=networks, alpha=config.alpha, sigma=config.sigma,
      beta=config.beta, num_future_frames=config.num_future_frames,
      action_clip=config.action_clip, lfpc_weight=config.lfpc_weight)
  loss_and_grad = jax.value_and_grad(loss_fn, has_aux=True)

  def update_step(state: TrainingState, window: Step):
    key, loss_key = jax.random.split(state.key)
    (value, stats), grads = loss_and_grad(state.params, window, loss_key)
    updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
    first_nonfinite_step = jnp.where(
        (state.first_nonfinite_step == NO_NONFINITE_STEP) & ~jnp.isfinite(value), state.steps,
        state.first_nonfinite_step)
    new_state = TrainingState(params=optax.apply_updates(state.params, updates),
                              opt_state=opt_state, key=key, steps=state.steps + 1,
                              first_nonfinite_step=first_nonfinite_step)
    return new_state, {"loss": value, **stats._asdict()}

  return update_step


class NPMPLearner(jitted_learner.JittedLearner):
  """Distils reference windows into the encoder and the decoder (the motor primitive)."""

  def __init__(self, networks: networks_lib.NPMPNetworks, iterator: Iterator[Step],
               key: chex.PRNGKey, config: config_lib.NPMPConfig,
               counter: Optional[counting.Counter] = None,
               logger: Optional[loggers.Logger] = None):
    super().__init__(iterator, counter, logger)
    optimizer = optax.adam(config.learning_rate)
    init_key, key = jax.random.split(key)
    params = networks.init(init_key)
    self._update_step = jax.jit(make_update_step(networks, optimizer, config))
    self._state = TrainingState(params=params, opt_state=optimizer.init(params), key=key,
                                steps=jnp.zeros((), jnp.int32),
                                first_nonfinite_step=jnp.asarray(NO_NONFINITE_STEP, jnp.int32))

  def _variables(self) -> dict:
    return {"params": self._state.params, "decoder": self._state.params["decoder"]}
