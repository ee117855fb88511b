"""The learner of `task_inference`: `kl_svg0`'s Retrace learner on a replayed recurrent core.

One update takes a batch of sequences (`priorax.replay.Step`, [B, N, ...] leaves) and computes, at
the pre-update parameters, the Retrace critic loss and the policy loss (SVG(0) plus the belief
loss, `losses.policy_loss`); α is tuned towards the target entropy. The recurrent critics of rl2
and rl2_aux share the policy's core, so the core's update there is the sum of both losses'
gradients (one optimizer per parameter, as for a shared torso). Targets (π' with its core, Q')
are hard copies of the online networks every `target_update_period` updates. The state is
`kl_svg0`'s `RetraceTrainingState` (no trainable prior), so `step`, `check_finite`,
`get_variables`, `save` and `restore` are `kl_svg0`'s.
"""

from typing import Iterator, NamedTuple, Optional

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax

from priorax.agents import jitted_learner
from priorax.agents.kl_svg0 import learning as kl_learning
from priorax.agents.kl_svg0 import losses as kl_losses
from priorax.agents.kl_svg0 import sequence_learning
from priorax.agents.task_inference import losses
from priorax.agents.task_inference import networks as networks_lib
from priorax.priors import base as priors_base
from priorax.replay.types import Step
from priorax.utils import counting
from priorax.utils import loggers


class Options(NamedTuple):
  """The learner's coefficients (`TaskInferenceConfig` fields of the same names; belief_cost is
  aux_cost for rl2_aux and 1 for the variants whose belief has no other loss)."""

  discount: float
  lambda_: float
  num_action_samples: int
  entropy_cost: float
  target_update_period: int
  burn_in: int
  belief_cost: float


class TaskInferenceLearner(kl_learning.KLSVG0Learner):
  """Trains the recurrent policy (and belief), the twin critics and α from replayed sequences."""

  def __init__(self, networks: networks_lib.TaskInferenceNetworks, prior: priors_base.Prior,
               iterator: Iterator[Step], key: chex.PRNGKey, *,
               policy_optimizer: optax.GradientTransformation,
               critic_optimizer: optax.GradientTransformation,
               alpha_optimizer: optax.GradientTransformation,
               init_alpha: float, tune_alpha: bool, target_kl: float, options: Options,
               counter: Optional[counting.Counter] = None,
               logger: Optional[loggers.Logger] = None):
    # pylint: disable=super-init-not-called  # The transition learner's init builds its own update.
    if prior.trainable:
      raise ValueError(f"prior {prior.name!r} is trainable; task_inference trains no prior")
    jitted_learner.JittedLearner.__init__(self, iterator, counter, logger)
    key, policy_key, critic_key = jax.random.split(key, 3)
    policy_params = networks.init(policy_key)
    critic_params = networks.critics.critic_init(critic_key)
    self._update_step = jax.jit(make_update_step(
        networks, prior, policy_optimizer, critic_optimizer, alpha_optimizer,
        tune_alpha=tune_alpha, target_kl=target_kl, options=options))
    log_alpha = jnp.asarray(np.log(init_alpha), jnp.float32)
    self._state = sequence_learning.RetraceTrainingState(
        policy_params=policy_params, critic_params=critic_params, prior_params=prior.params,
        target_policy_params=policy_params, target_critic_params=critic_params,
        target_prior_params=prior.params, log_alpha=log_alpha,
        policy_opt_state=policy_optimizer.init(policy_params),
        critic_opt_state=critic_optimizer.init(critic_params),
        alpha_opt_state=alpha_optimizer.init(log_alpha), prior_opt_state=(),
        steps=jnp.zeros((), jnp.int32), key=key,
        first_nonfinite_step=jnp.asarray(kl_learning.NO_NONFINITE_STEP, jnp.int32))


def make_update_step(networks: networks_lib.TaskInferenceNetworks, prior: priors_base.Prior,
                     policy_optimizer, critic_optimizer, alpha_optimizer, *, tune_alpha: bool,
                     target_kl: float, options: Options):
  """Returns `update_step(state, steps) -> (state, metrics)`, pure and jittable (see the module
  docstring; `sequence_learning.make_retrace_update_step` without a trainable prior)."""
  # Recurrent critics also differentiate the critic loss with respect to the policy's core.
  critic_grad = jax.value_and_grad(
      losses.critic_loss, argnums=(0, 3) if networks.recurrent_critic else 0, has_aux=True)
  policy_grad = jax.value_and_grad(losses.policy_loss, has_aux=True)
  alpha_grad = jax.grad(kl_losses.alpha_loss)

  def update_step(state: sequence_learning.RetraceTrainingState, steps: Step):
    key, critic_key, policy_key = jax.random.split(state.key, 3)
    alpha = jnp.exp(state.log_alpha)
    (critic_loss, critic_stats), critic_grads = critic_grad(
        state.critic_params, state.target_critic_params, state.target_policy_params,
        state.policy_params, state.target_prior_params, steps, alpha, critic_key,
        networks=networks, prior=prior, burn_in=options.burn_in, discount=options.discount,
        lambda_=options.lambda_, num_action_samples=options.num_action_samples)
    if networks.recurrent_critic:
      critic_grads, critic_core_grads = critic_grads
    (policy_loss, policy_stats), policy_grads = policy_grad(
        state.policy_params, state.target_critic_params, state.target_policy_params,
        state.target_prior_params, steps, alpha, policy_key, networks=networks, prior=prior,
        burn_in=options.burn_in, belief_cost=options.belief_cost, entropy_cost=options.entropy_cost,
        num_action_samples=options.num_action_samples)

    critic_updates, critic_opt_state = critic_optimizer.update(
        critic_grads, state.critic_opt_state, state.critic_params)
    critic_params = optax.apply_updates(state.critic_params, critic_updates)
    if networks.recurrent_critic:
      policy_grads = {**policy_grads, "core": jax.tree_util.tree_map(
          jnp.add, policy_grads["core"], critic_core_grads["core"])}
    policy_updates, policy_opt_state = policy_optimizer.update(policy_grads,
                                                               state.policy_opt_state)
    policy_params = optax.apply_updates(state.policy_params, policy_updates)
    log_alpha, alpha_opt_state = state.log_alpha, state.alpha_opt_state
    if tune_alpha:
      alpha_updates, alpha_opt_state = alpha_optimizer.update(
          alpha_grad(state.log_alpha, policy_stats.kl_mean, target_kl), state.alpha_opt_state)
      log_alpha = optax.apply_updates(state.log_alpha, alpha_updates)

    finite = jnp.isfinite(critic_loss) & jnp.isfinite(policy_loss) & jnp.isfinite(log_alpha)
    steps_done = state.steps + 1
    copy = steps_done % options.target_update_period == 0
    refresh = lambda online, target: jax.tree_util.tree_map(
        lambda o, t: jnp.where(copy, o, t), online, target)
    first_nonfinite_step = jnp.where(
        (state.first_nonfinite_step == kl_learning.NO_NONFINITE_STEP) & ~finite, state.steps,
        state.first_nonfinite_step)
    new_state = state._replace(
        policy_params=policy_params, critic_params=critic_params,
        target_policy_params=refresh(policy_params, state.target_policy_params),
        target_critic_params=refresh(critic_params, state.target_critic_params),
        log_alpha=log_alpha, policy_opt_state=policy_opt_state,
        critic_opt_state=critic_opt_state, alpha_opt_state=alpha_opt_state,
        steps=steps_done, key=key, first_nonfinite_step=first_nonfinite_step)
    metrics = {
        "critic_loss": critic_loss, "policy_loss": policy_loss, "alpha": alpha,
        "q_mean": critic_stats.q_mean, "target_mean": critic_stats.target_mean,
        "rho_mean": critic_stats.rho_mean, "valid_fraction": critic_stats.valid_fraction,
        "kl_mean": policy_stats.kl_mean, "entropy_estimate": policy_stats.entropy_estimate,
    }
    if networks.has_belief:
      metrics.update(belief_loss=policy_stats.belief_loss, belief_error=policy_stats.belief_error)
    return new_state, metrics

  return update_step
