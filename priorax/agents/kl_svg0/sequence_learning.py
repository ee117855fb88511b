"""The Retrace sequence learner of `kl_svg0`: SVG(0) + Retrace on replayed sequences.

The learner of the KL-regularised papers and of Acme's `svg0_prior` agent (METHODS §1; losses and
references in `sequence_losses`). It consumes an iterator of `priorax.replay.Step` batches
([B, N, ...] leaves, N = sequence_length + 1) and, like the transition learner, never imports
Reverb or TensorFlow. Target networks (π', Q', π0') are hard copies of the online ones, refreshed
every `target_update_period` updates.
"""

from typing import Any, Iterator, NamedTuple, Optional

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax

from priorax.agents import jitted_learner
from priorax.agents.kl_svg0 import learning
from priorax.agents.kl_svg0 import losses
from priorax.agents.kl_svg0 import networks as networks_lib
from priorax.agents.kl_svg0 import sequence_losses
from priorax.priors import base as priors_base
from priorax.replay.types import Step
from priorax.stream import soft_reset
from priorax.utils import counting
from priorax.utils import loggers


class RetraceTrainingState(NamedTuple):
  """Everything the Retrace learner needs to continue exactly where it stopped.

  The fields the launchers and actors read (`policy_params`, `critic_params`, `prior_params`,
  `steps`, `first_nonfinite_step`) mean what they mean in `learning.TrainingState`.
  """

  policy_params: Any
  critic_params: Any
  prior_params: Any
  target_policy_params: Any
  target_critic_params: Any
  target_prior_params: Any
  log_alpha: chex.Array
  policy_opt_state: Any
  critic_opt_state: Any
  alpha_opt_state: Any
  prior_opt_state: Any  # () unless the prior is trainable.
  steps: chex.Array
  key: chex.PRNGKey
  first_nonfinite_step: chex.Array


class RetraceOptions(NamedTuple):
  """The Retrace learner's coefficients (`KLSVG0Config` fields of the same names)."""

  discount: float
  lambda_: float
  num_action_samples: int
  entropy_cost: float
  target_update_period: int


class KLSVG0RetraceLearner(learning.KLSVG0Learner):
  """Learner of `kl_svg0` with the Retrace critic; α tuned towards a KL target or fixed.

  It differs from `KLSVG0Learner` only in its state and its update: `step`, `check_finite`,
  `get_variables`, `save` and `restore` are the transition learner's. With a trainable prior, π0
  is distilled from the policy on the sequences' states in the same update.
  """

  def __init__(self, networks: networks_lib.KLSVG0Networks, prior: priors_base.Prior,
               iterator: Iterator[Step], key: chex.PRNGKey, *,
               policy_optimizer: optax.GradientTransformation,
               critic_optimizer: optax.GradientTransformation,
               alpha_optimizer: optax.GradientTransformation,
               init_alpha: float, tune_alpha: bool, target_kl: float, options: RetraceOptions,
               critic_soft_reset: Optional[soft_reset.SoftResetConfig] = None,
               prior_optimizer: Optional[optax.GradientTransformation] = None,
               counter: Optional[counting.Counter] = None,
               logger: Optional[loggers.Logger] = None, num_sgd_steps_per_step: int = 1):
    # pylint: disable=super-init-not-called  # The transition learner's init builds its own update.
    if prior.trainable and prior_optimizer is None:
      raise ValueError(f"prior {prior.name!r} is trainable and needs a prior_optimizer")
    jitted_learner.JittedLearner.__init__(self, iterator, counter, logger, num_sgd_steps_per_step)
    key, policy_key, critic_key = jax.random.split(key, 3)
    policy_params = networks.policy_init(policy_key)
    critic_params = networks.critic_init(critic_key)
    prior_params = prior.params
    if prior.init is not None:
      key, prior_key = jax.random.split(key)
      prior_params = prior.init(prior_key)
    if critic_soft_reset is not None:
      critic_optimizer = soft_reset.soft_reset(critic_optimizer, critic_params, critic_soft_reset)
    self._update_step = jax.jit(make_retrace_update_step(
        networks, prior, policy_optimizer, critic_optimizer, alpha_optimizer,
        prior_optimizer if prior.trainable else None, tune_alpha=tune_alpha,
        target_kl=target_kl, options=options))
    log_alpha = jnp.asarray(np.log(init_alpha), jnp.float32)
    self._state = RetraceTrainingState(
        policy_params=policy_params, critic_params=critic_params, prior_params=prior_params,
        target_policy_params=policy_params, target_critic_params=critic_params,
        target_prior_params=prior_params,
        log_alpha=log_alpha, policy_opt_state=policy_optimizer.init(policy_params),
        critic_opt_state=critic_optimizer.init(critic_params),
        alpha_opt_state=alpha_optimizer.init(log_alpha),
        prior_opt_state=prior_optimizer.init(prior_params) if prior.trainable else (),
        steps=jnp.zeros((), jnp.int32), key=key,
        first_nonfinite_step=jnp.asarray(learning.NO_NONFINITE_STEP, jnp.int32))


def make_retrace_update_step(networks, prior, policy_optimizer, critic_optimizer, alpha_optimizer,
                             prior_optimizer: Optional[optax.GradientTransformation], *,
                             tune_alpha: bool, target_kl: float, options: RetraceOptions):
  """Returns `update_step(state, steps) -> (state, metrics)`, pure and jittable.

  All gradients are taken at the pre-update parameters. The critic regresses on Retrace targets
  built from π', Q' and π0'; the policy is scored by Q' and regularised towards π0' (Acme's
  `svg0_prior`); π0 (if trainable) is distilled from the online π. After the update, when the
  update count reaches a multiple of `target_update_period`, the targets become copies of the
  online networks (the first copy is the initialisation itself).
  """
  if prior.trainable and prior_optimizer is None:
    raise ValueError(f"prior {prior.name!r} is trainable and needs a prior_optimizer")
  critic_grad = jax.value_and_grad(sequence_losses.retrace_critic_loss, has_aux=True)
  policy_grad = jax.value_and_grad(sequence_losses.sequence_policy_loss, has_aux=True)
  alpha_grad = jax.grad(losses.alpha_loss)
  prior_grad = jax.value_and_grad(sequence_losses.sequence_prior_loss, has_aux=True)

  def update_step(state: RetraceTrainingState, steps: Step):
    key, critic_key, policy_key, prior_key = jax.random.split(state.key, 4)
    alpha = jnp.exp(state.log_alpha)
    (critic_loss, critic_stats), critic_grads = critic_grad(
        state.critic_params, state.target_critic_params, state.target_policy_params,
        state.policy_params, state.target_prior_params, steps, alpha, critic_key,
        networks=networks, prior=prior, discount=options.discount, lambda_=options.lambda_,
        num_action_samples=options.num_action_samples)
    (policy_loss, policy_stats), policy_grads = policy_grad(
        state.policy_params, state.target_critic_params, state.target_prior_params, steps, alpha,
        policy_key, networks=networks, prior=prior, entropy_cost=options.entropy_cost,
        num_action_samples=options.num_action_samples)

    critic_updates, critic_opt_state = critic_optimizer.update(
        critic_grads, state.critic_opt_state, state.critic_params)
    critic_params = optax.apply_updates(state.critic_params, critic_updates)
    policy_updates, policy_opt_state = policy_optimizer.update(policy_grads,
                                                               state.policy_opt_state)
    policy_params = optax.apply_updates(state.policy_params, policy_updates)
    log_alpha, alpha_opt_state = state.log_alpha, state.alpha_opt_state
    if tune_alpha:
      alpha_updates, alpha_opt_state = alpha_optimizer.update(
          alpha_grad(state.log_alpha, policy_stats.kl_mean, target_kl), state.alpha_opt_state)
      log_alpha = optax.apply_updates(state.log_alpha, alpha_updates)

    metrics = {}
    finite = jnp.isfinite(critic_loss) & jnp.isfinite(policy_loss) & jnp.isfinite(log_alpha)
    prior_params, prior_opt_state = state.prior_params, state.prior_opt_state
    if prior.trainable:
      (prior_loss, _), prior_grads = prior_grad(state.prior_params, state.policy_params, steps,
                                                prior_key, networks=networks, prior=prior)
      prior_updates, prior_opt_state = prior_optimizer.update(prior_grads, state.prior_opt_state)
      prior_params = optax.apply_updates(state.prior_params, prior_updates)
      metrics["prior_loss"] = prior_loss
      finite &= jnp.isfinite(prior_loss)

    steps_done = state.steps + 1
    copy = steps_done % options.target_update_period == 0
    refresh = lambda online, target: jax.tree_util.tree_map(
        lambda o, t: jnp.where(copy, o, t), online, target)
    first_nonfinite_step = jnp.where(
        (state.first_nonfinite_step == learning.NO_NONFINITE_STEP) & ~finite, state.steps,
        state.first_nonfinite_step)
    new_state = RetraceTrainingState(
        policy_params=policy_params, critic_params=critic_params, prior_params=prior_params,
        target_policy_params=refresh(policy_params, state.target_policy_params),
        target_critic_params=refresh(critic_params, state.target_critic_params),
        target_prior_params=refresh(prior_params, state.target_prior_params),
        log_alpha=log_alpha, policy_opt_state=policy_opt_state,
        critic_opt_state=critic_opt_state, alpha_opt_state=alpha_opt_state,
        prior_opt_state=prior_opt_state, steps=steps_done, key=key,
        first_nonfinite_step=first_nonfinite_step)
    metrics.update({
        "critic_loss": critic_loss, "policy_loss": policy_loss, "alpha": alpha,
        "q_mean": critic_stats.q_mean, "target_mean": critic_stats.target_mean,
        "rho_mean": critic_stats.rho_mean, "valid_fraction": critic_stats.valid_fraction,
        "kl_mean": policy_stats.kl_mean, "entropy_estimate": policy_stats.entropy_estimate,
    })
    return new_state, metrics

  return update_step
