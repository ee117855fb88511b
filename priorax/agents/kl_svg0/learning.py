"""The KL-regularised SVG(0) learner: owns its TrainingState, one jitted update per batch.

It consumes an iterator of `types.Transition` batches (numpy or device arrays) and never imports
Reverb or TensorFlow, so it runs unchanged on an accelerator machine fed by any sampler.
"""

from typing import Any, Iterator, NamedTuple, Optional

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax

from priorax import types
from priorax.agents import jitted_learner
from priorax.agents.kl_svg0 import losses
from priorax.agents.kl_svg0 import networks as networks_lib
from priorax.priors import base as priors_base
from priorax.stream import soft_reset
from priorax.utils import counting
from priorax.utils import loggers

NO_NONFINITE_STEP = jitted_learner.NO_NONFINITE_STEP


class TrainingState(NamedTuple):
  """Everything the learner needs to continue exactly where it stopped.

  Arrays are never donated to the update, so references handed to actors or the checkpointer from
  another thread stay valid while the learner keeps stepping.
  """

  policy_params: Any
  critic_params: Any
  target_critic_params: Any
  prior_params: Any
  log_alpha: chex.Array
  policy_opt_state: Any
  critic_opt_state: Any
  alpha_opt_state: Any
  # The prior's optimiser state: () unless the prior is trainable, so the state of a uniform or
  # fixed-prior run is the same tree as before learned priors existed (their checkpoints, which
  # lack this field, restore with the template's ()).
  prior_opt_state: Any
  steps: chex.Array
  key: chex.PRNGKey
  # The first update whose losses were not finite (NO_NONFINITE_STEP while all were): recorded
  # inside the jitted update, so the exact step is known without a host sync per step.
  first_nonfinite_step: chex.Array


class KLSVG0Learner(jitted_learner.JittedLearner):
  """Learner of `kl_svg0` (SVG(0) policy, twin soft critics, α tuned towards a KL/entropy target).

  With a trainable prior (`prior.trainable`, the learned default policy), π0 is distilled from the
  policy in the same update by `prior_optimizer`, and its params start from `prior.init` with a
  key split off the learner's key (after the policy's and critic's, so runs with a fixed or
  uniform prior draw exactly the keys they always did).
  """

  def __init__(self, networks: networks_lib.KLSVG0Networks, prior: priors_base.Prior,
               iterator: Iterator[types.Transition], key: chex.PRNGKey, *,
               policy_optimizer: optax.GradientTransformation,
               critic_optimizer: optax.GradientTransformation,
               alpha_optimizer: optax.GradientTransformation,
               init_alpha: float, tune_alpha: bool, target_kl: float, target_update_rate: float,
               critic_soft_reset: Optional[soft_reset.SoftResetConfig] = None,
               prior_optimizer: Optional[optax.GradientTransformation] = None,
               counter: Optional[counting.Counter] = None,
               logger: Optional[loggers.Logger] = None, num_sgd_steps_per_step: int = 1):
    if prior.trainable and prior_optimizer is None:
      raise ValueError(f"prior {prior.name!r} is trainable and needs a prior_optimizer")
    super().__init__(iterator, counter, logger, num_sgd_steps_per_step)
    key, policy_key, critic_key = jax.random.split(key, 3)
    policy_params = networks.policy_init(policy_key)
    critic_params = networks.critic_init(critic_key)
    prior_params = prior.params
    if prior.init is not None:
      key, prior_key = jax.random.split(key)
      prior_params = prior.init(prior_key)
    if critic_soft_reset is not None:
      # The OU drift pulls the critic towards its initialisation (Galashov et al. 2024).
      critic_optimizer = soft_reset.soft_reset(critic_optimizer, critic_params, critic_soft_reset)
    self._update_step = jax.jit(
        make_update_step(networks, prior, policy_optimizer, critic_optimizer, alpha_optimizer,
                         prior_optimizer, tune_alpha=tune_alpha, target_kl=target_kl,
                         target_update_rate=target_update_rate))
    self._state = make_initial_state(policy_params, critic_params, prior_params, key,
                                     policy_optimizer, critic_optimizer, alpha_optimizer,
                                     prior_optimizer if prior.trainable else None, init_alpha)

  def _variables(self) -> dict:
    return {"policy": self._state.policy_params, "critic": self._state.critic_params,
            "prior": self._state.prior_params}


def make_initial_state(policy_params, critic_params, prior_params, key, policy_optimizer,
                       critic_optimizer, alpha_optimizer,
                       prior_optimizer: Optional[optax.GradientTransformation],
                       init_alpha: float) -> TrainingState:
  """The state before the first update; `prior_optimizer` is None for a prior that is not
  trained (its optimiser state is then ())."""
  log_alpha = jnp.asarray(np.log(init_alpha), jnp.float32)
  return TrainingState(
      policy_params=policy_params,
      critic_params=critic_params,
      target_critic_params=critic_params,
      prior_params=prior_params,
      log_alpha=log_alpha,
      policy_opt_state=policy_optimizer.init(policy_params),
      critic_opt_state=critic_optimizer.init(critic_params),
      alpha_opt_state=alpha_optimizer.init(log_alpha),
      prior_opt_state=prior_optimizer.init(prior_params) if prior_optimizer is not None else (),
      steps=jnp.zeros((), jnp.int32),
      key=key,
      first_nonfinite_step=jnp.asarray(NO_NONFINITE_STEP, jnp.int32))


def make_update_step(networks, prior, policy_optimizer, critic_optimizer, alpha_optimizer,
                     prior_optimizer: Optional[optax.GradientTransformation] = None, *,
                     tune_alpha: bool, target_kl: float, target_update_rate: float):
  """Returns `update_step(state, transitions) -> (state, metrics)`, pure and jittable.

  Critic, policy, α and (for a trainable prior) π0 gradients are all taken at the pre-update
  parameters (as in Acme's SAC), which lets XLA overlap the backward passes. So the critic's target
  and the policy's regulariser both use the prior as it is at this step (the current prior, not a
  slow target copy): the transition learner draws a' from the current policy, as SAC does, and
  KL(π ‖ π0) in its target is then the same regulariser the policy is trained with this step. The
  papers' Retrace learner bootstraps towards a target prior (METHODS §1); that is the sequence
  variant's choice. The prior is updated only by `losses.prior_loss` (π held fixed), the policy
  only by `losses.policy_loss` (π0 held fixed).
  """
  if prior.trainable and prior_optimizer is None:
    raise ValueError(f"prior {prior.name!r} is trainable and needs a prior_optimizer")
  critic_grad = jax.value_and_grad(losses.critic_loss, has_aux=True)
  policy_grad = jax.value_and_grad(losses.policy_loss, has_aux=True)
  alpha_grad = jax.grad(losses.alpha_loss)
  prior_grad = jax.value_and_grad(losses.prior_loss, has_aux=True)

  def update_step(state: TrainingState, transitions: types.Transition):
    if prior.trainable:
      key, critic_key, policy_key, prior_key = jax.random.split(state.key, 4)
    else:
      key, critic_key, policy_key = jax.random.split(state.key, 3)
    alpha = jnp.exp(state.log_alpha)
    (critic_loss, critic_stats), critic_grads = critic_grad(
        state.critic_params, state.target_critic_params, state.policy_params, state.prior_params,
        transitions, alpha, critic_key, networks=networks, prior=prior)
    (policy_loss, policy_stats), policy_grads = policy_grad(
        state.policy_params, state.critic_params, state.prior_params, transitions.observation,
        alpha, policy_key, networks=networks, prior=prior)

    critic_updates, critic_opt_state = critic_optimizer.update(
        critic_grads, state.critic_opt_state, state.critic_params)
    critic_params = optax.apply_updates(state.critic_params, critic_updates)
    policy_updates, policy_opt_state = policy_optimizer.update(policy_grads,
                                                               state.policy_opt_state)
    policy_params = optax.apply_updates(state.policy_params, policy_updates)
    target_critic_params = optax.incremental_update(critic_params, state.target_critic_params,
                                                    target_update_rate)
    log_alpha, alpha_opt_state = state.log_alpha, state.alpha_opt_state
    if tune_alpha:
      # The policy loss's batch KL estimate drives α (same sample, no extra forward pass).
      alpha_updates, alpha_opt_state = alpha_optimizer.update(
          alpha_grad(state.log_alpha, policy_stats.kl_mean, target_kl), state.alpha_opt_state)
      log_alpha = optax.apply_updates(state.log_alpha, alpha_updates)

    prior_metrics = {}
    finite = jnp.isfinite(critic_loss) & jnp.isfinite(policy_loss) & jnp.isfinite(log_alpha)
    prior_params, prior_opt_state = state.prior_params, state.prior_opt_state
    if prior.trainable:
      (prior_loss, _), prior_grads = prior_grad(
          state.prior_params, state.policy_params, transitions.observation, prior_key,
          networks=networks, prior=prior)
      prior_updates, prior_opt_state = prior_optimizer.update(prior_grads, state.prior_opt_state)
      prior_params = optax.apply_updates(state.prior_params, prior_updates)
      prior_metrics["prior_loss"] = prior_loss
      finite &= jnp.isfinite(prior_loss)
    first_nonfinite_step = jnp.where(
        (state.first_nonfinite_step == NO_NONFINITE_STEP) & ~finite, state.steps,
        state.first_nonfinite_step)
    new_state = TrainingState(
        policy_params=policy_params, critic_params=critic_params,
        target_critic_params=target_critic_params, prior_params=prior_params,
        log_alpha=log_alpha, policy_opt_state=policy_opt_state,
        critic_opt_state=critic_opt_state, alpha_opt_state=alpha_opt_state,
        prior_opt_state=prior_opt_state, steps=state.steps + 1, key=key,
        first_nonfinite_step=first_nonfinite_step)
    metrics = {
        "critic_loss": critic_loss, "policy_loss": policy_loss, "alpha": alpha,
        "q_mean": critic_stats.q_mean, "target_mean": critic_stats.target_mean,
        "kl_mean": policy_stats.kl_mean, "entropy_estimate": policy_stats.entropy_estimate,
        **prior_metrics,
    }
    return new_state, metrics

  return update_step
