"""The REQ learner: owns its TrainingState, one jitted update per batch.

Jeong et al. 2020, "Learning dexterous manipulation from suboptimal experts",
https://arxiv.org/abs/2010.08587. Each update fits Q to the importance-weighted value of the
improved policy π_i ∝ π'_prior exp(Q'/τ_s) (`losses.critic_loss`), the prior to the replayed (and
expert) actions of non-negative advantage inside its KL trust regions (`losses.prior_loss`), and
the trust-region duals; the per-state temperatures are solved inside the same jitted update. It
consumes an iterator of `types.Transition` batches and never imports Reverb or TensorFlow.
"""

from typing import Any, Iterator, NamedTuple, Optional

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax

from priorax import types
from priorax.agents import jitted_learner
from priorax.agents.kl_svg0 import learning as kl_svg0_learning
from priorax.agents.req import config as config_lib
from priorax.agents.req import losses
from priorax.agents.req import networks as networks_lib
from priorax.utils import counting
from priorax.utils import loggers

NO_NONFINITE_STEP = kl_svg0_learning.NO_NONFINITE_STEP


class PolicyParams(NamedTuple):
  """What defines REQ's policy π ∝ π_prior exp(Q/τ_s): the prior's and the critic's params.

  This is what actors pull (variable "policy") and what a checkpoint's `policy_params` holds.
  """

  prior: Any
  critic: Any


class TrainingState(NamedTuple):
  """Everything the learner needs to continue exactly where it stopped."""

  policy_params: PolicyParams
  # The target networks π'_prior and Q', hard-copied every `target_update_period` steps.
  target_params: PolicyParams
  duals: losses.DualParams
  prior_opt_state: Any
  critic_opt_state: Any
  dual_opt_state: Any
  steps: chex.Array
  key: chex.PRNGKey
  # The first update whose losses were not finite (NO_NONFINITE_STEP while all were).
  first_nonfinite_step: chex.Array


class REQLearner(jitted_learner.JittedLearner):
  """Learner of `req`: critic, prior and trust-region duals, one jitted update per batch."""

  def __init__(self, networks: networks_lib.REQNetworks, iterator: Iterator[types.Transition],
               key: chex.PRNGKey, config: config_lib.REQConfig, *,
               prior_optimizer: optax.GradientTransformation,
               critic_optimizer: optax.GradientTransformation,
               dual_optimizer: optax.GradientTransformation,
               counter: Optional[counting.Counter] = None,
               logger: Optional[loggers.Logger] = None,
               initial_params: Optional[PolicyParams] = None):
    """`initial_params` replaces the networks' initialisation (transfer, `transfer.py`)."""
    super().__init__(iterator, counter, logger)
    key, prior_key, critic_key = jax.random.split(key, 3)
    params = initial_params
    if params is None:
      params = PolicyParams(networks.prior_init(prior_key), networks.critic_init(critic_key))
    self._update_step = jax.jit(make_update_step(networks, config, prior_optimizer,
                                                 critic_optimizer, dual_optimizer))
    self._state = make_initial_state(params, key, config.init_dual, prior_optimizer,
                                     critic_optimizer, dual_optimizer)

  def _variables(self) -> dict:
    return {"policy": self._state.policy_params}


def make_initial_state(params: PolicyParams, key: chex.PRNGKey, init_dual: float,
                       prior_optimizer, critic_optimizer, dual_optimizer) -> TrainingState:
  """The state before the first update: targets equal to the online networks, α_μ = α_Σ =
  `init_dual`."""
  raw = jnp.asarray(np.log(np.expm1(init_dual)), jnp.float32)  # softplus⁻¹(α).
  duals = losses.DualParams(raw, raw)
  return TrainingState(
      policy_params=params, target_params=params, duals=duals,
      prior_opt_state=prior_optimizer.init(params.prior),
      critic_opt_state=critic_optimizer.init(params.critic),
      dual_opt_state=dual_optimizer.init(duals),
      steps=jnp.zeros((), jnp.int32), key=key,
      first_nonfinite_step=jnp.asarray(NO_NONFINITE_STEP, jnp.int32))


def make_update_step(networks: networks_lib.REQNetworks, config: config_lib.REQConfig,
                     prior_optimizer, critic_optimizer, dual_optimizer):
  """Returns `update_step(state, transitions) -> (state, metrics)`, pure and jittable.

  Critic and prior gradients are taken at the pre-update parameters against the target networks.
  The expert-regression term is used when the observations carry the expert's action
  (`config.EXPERT_ACTION_KEY`, known when the update is traced).
  """
  sampling = dict(networks=networks, num_samples=config.num_samples, epsilon=config.epsilon,
                  dual_steps=config.dual_steps)
  critic_grad = jax.value_and_grad(losses.critic_loss, has_aux=True)
  prior_grad = jax.value_and_grad(losses.prior_loss, argnums=(0, 1), has_aux=True)

  def update_step(state: TrainingState, transitions: types.Transition):
    key, critic_key, prior_key = jax.random.split(state.key, 3)
    (critic_loss, critic_stats), critic_grads = critic_grad(
        state.policy_params.critic, state.target_params.critic, state.target_params.prior,
        transitions, critic_key, **sampling)
    expert_action = transitions.observation.get(config_lib.EXPERT_ACTION_KEY)
    (prior_loss, prior_stats), (prior_grads, dual_grads) = prior_grad(
        state.policy_params.prior, state.duals, state.target_params.prior,
        state.target_params.critic, transitions.observation, transitions.action, expert_action,
        prior_key, epsilon_mean=config.epsilon_mean, epsilon_stddev=config.epsilon_stddev,
        expert_loss_weight=config.expert_loss_weight, **sampling)

    critic_updates, critic_opt_state = critic_optimizer.update(critic_grads,
                                                               state.critic_opt_state)
    prior_updates, prior_opt_state = prior_optimizer.update(prior_grads, state.prior_opt_state)
    dual_updates, dual_opt_state = dual_optimizer.update(dual_grads, state.dual_opt_state)
    params = PolicyParams(optax.apply_updates(state.policy_params.prior, prior_updates),
                          optax.apply_updates(state.policy_params.critic, critic_updates))
    duals = optax.apply_updates(state.duals, dual_updates)
    steps = state.steps + 1
    target_params = optax.periodic_update(params, state.target_params, steps,
                                          config.target_update_period)

    finite = jnp.isfinite(critic_loss) & jnp.isfinite(prior_loss)
    first_nonfinite_step = jnp.where(
        (state.first_nonfinite_step == NO_NONFINITE_STEP) & ~finite, state.steps,
        state.first_nonfinite_step)
    new_state = TrainingState(
        policy_params=params, target_params=target_params, duals=duals,
        prior_opt_state=prior_opt_state, critic_opt_state=critic_opt_state,
        dual_opt_state=dual_opt_state, steps=steps, key=key,
        first_nonfinite_step=first_nonfinite_step)
    metrics = {"critic_loss": critic_loss, "prior_loss": prior_loss,
               **critic_stats._asdict(), **prior_stats._asdict()}
    return new_state, metrics

  return update_step
