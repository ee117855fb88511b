"""Losses of `task_inference`: the belief's supervised loss, and `kl_svg0`'s Retrace critic and
SVG(0) policy losses applied to features of a recurrent core replayed with burn-in.

All are pure functions of explicit inputs. Sequences are `priorax.replay.Step` batches of N =
burn_in + L + 1 stored steps whose extras are `recurrent.RecurrentExtras`; the core is replayed
from the state stored at step 0, the first `burn_in` steps only refresh it (R2D2, Kapturowski et
al. 2019, §3), and the losses see the remaining L + 1 steps with the policy's own extras (behaviour
density and pre-squash action, `kl_svg0.sequence_losses`). The recurrent critics of rl2 and
rl2_aux read the same replayed features (the online core's for Q, the target core's for Q'), so
they too start from the stored state after burn-in.
"""

from typing import NamedTuple

import chex
import jax
import jax.numpy as jnp
import numpy as np

from priorax.agents.kl_svg0 import sequence_losses
from priorax.agents.task_inference import networks as networks_lib
from priorax.networks import recurrent
from priorax.priors import base as priors_base
from priorax.replay.types import Step

# pylint: disable=protected-access  # kl_svg0's [B, N] -> [B·N] flattening and masked mean.
_flatten = sequence_losses._flatten
_masked_mean = sequence_losses._masked_mean


def belief_nll(belief: networks_lib.Belief, task: chex.Array, categorical: bool) -> chex.Array:
  """−log q(task | h_t) per state (Humplik et al. 2019, §4: the belief is trained by maximum
  likelihood of the privileged task descriptor):

    Gaussian:     ½ Σ_i [ ((μ_i − task_i) / σ_i)² + 2 log σ_i + log 2π ],
    categorical:  −Σ_rows Σ_c task_{row,c} log softmax(logits_row)_c   (one-hot rows).

  Args:
    belief: q's parameters, leaves [M, ...].
    task: the true descriptor [M, *task shape].
    categorical: which of the two likelihoods.

  Returns:
    [M] negative log-likelihoods.
  """
  if categorical:
    return -jnp.sum(task * jax.nn.log_softmax(belief.loc), axis=(-2, -1))
  z = (task - belief.loc) / belief.scale
  return 0.5 * jnp.sum(jnp.square(z) + 2.0 * jnp.log(belief.scale) + np.log(2.0 * np.pi), -1)


def belief_error(belief: networks_lib.Belief, task: chex.Array, categorical: bool) -> chex.Array:
  """How wrong the belief's point estimate is, per state: ‖μ − task‖ (Gaussian) or the fraction of
  rows whose most likely class is not the true one (categorical). [M]."""
  if categorical:
    wrong = jnp.argmax(belief.loc, -1) != jnp.argmax(task, -1)
    return jnp.mean(wrong.astype(jnp.float32), -1)
  return jnp.linalg.norm(belief.loc - task, axis=-1)


def replay_features(networks: networks_lib.TaskInferenceNetworks, params, steps: Step,
                    burn_in: int) -> tuple[chex.Array, Step]:
  """Core features of replayed sequences after burn-in, and the steps they belong to.

  Returns:
    (features [B·(N − burn_in), H]; the steps burn_in … N − 1, [B, N − burn_in, ...] leaves, whose
    extras are the policy's extras, as `kl_svg0.sequence_losses` expect).
  """
  inputs = recurrent.core_inputs_from_steps(steps)
  state = recurrent.stored_core_state(steps, networks.core.initial_state(1))
  features, _ = recurrent.unroll_with_burn_in(networks.core, params["core"], inputs,
                                              steps.start_of_episode, state, burn_in)
  _, tail = recurrent.split_burn_in(steps, burn_in)
  return _flatten(features), tail._replace(extras=tail.extras.policy_extras)


class PolicyStats(NamedTuple):
  kl_mean: chex.Array
  entropy_estimate: chex.Array
  belief_loss: chex.Array
  belief_error: chex.Array


def critic_parameters(networks: networks_lib.TaskInferenceNetworks, critic_params,
                      features: chex.Array):
  """The critic parameters `replay_networks` take: (critic params, core features [M, H]) for
  recurrent critics, the critic params alone for the feed-forward ones."""
  return (critic_params, features) if networks.recurrent_critic else critic_params


def policy_loss(policy_params, target_critic_params, target_policy_params, prior_params,
                steps: Step, alpha: chex.Array, key: chex.PRNGKey, *,
                networks: networks_lib.TaskInferenceNetworks,
                prior: priors_base.Prior, burn_in: int, belief_cost: float, entropy_cost: float,
                num_action_samples: int):
  """`kl_svg0`'s SVG(0) policy loss on the replayed core's features, plus belief_cost times the
  belief loss E[−log q(task | h_t)] over real states (for variants with a belief):

    L = L_SVG0(π) + belief_cost · E[−log q(task | h_t)].

  Where gradients go is the variant's (see `networks`): for rl2/rl2_aux the SVG(0) term trains
  the core (through h_t); for task_inference/oracle it reaches only the policy's torso and head,
  and the belief term only the core and belief head. The recurrent critics of rl2/rl2_aux score
  actions on the target core's features (`target_policy_params`, a constant here).

  Returns:
    (loss, PolicyStats).
  """
  features, tail = replay_features(networks, policy_params, steps, burn_in)
  target_features = None
  if networks.recurrent_critic:
    target_features, _ = replay_features(networks, target_policy_params, steps, burn_in)
  rl_loss, rl_stats = sequence_losses.sequence_policy_loss(
      (policy_params["heads"], features),
      critic_parameters(networks, target_critic_params, target_features), prior_params, tail,
      alpha, key, networks=networks_lib.replay_networks(networks), prior=prior,
      entropy_cost=entropy_cost,
      num_action_samples=num_action_samples)
  loss, nll, error = rl_loss, jnp.zeros(()), jnp.zeros(())
  if networks.has_belief:
    observation = _flatten(tail.observation)
    belief = networks.heads_apply(policy_params["heads"], features, observation).belief
    task = observation[networks_lib.TASK_KEY]
    weights = tail.mask.reshape(-1).astype(features.dtype)
    nll = _masked_mean(belief_nll(belief, task, networks.categorical_task), weights)
    error = _masked_mean(belief_error(belief, task, networks.categorical_task), weights)
    loss = loss + belief_cost * nll
  stats = PolicyStats(rl_stats.kl_mean, rl_stats.entropy_estimate, nll, error)
  return loss, jax.lax.stop_gradient(stats)


def critic_loss(critic_params, target_critic_params, target_policy_params, policy_params,
                prior_params, steps: Step, alpha: chex.Array, key: chex.PRNGKey, *,
                networks: networks_lib.TaskInferenceNetworks, prior: priors_base.Prior,
                burn_in: int, discount: float, lambda_: float, num_action_samples: int):
  """`kl_svg0`'s Retrace critic loss, the policies π and π' reading their own cores' features
  (each replayed from the stored state with burn-in). The recurrent critics of rl2/rl2_aux read
  the same features: Q the online core's, whose gradient reaches `policy_params["core"]` (the
  learner applies it with the policy's update), Q' the target core's. Returns
  (loss, RetraceCriticStats)."""
  features, tail = replay_features(networks, policy_params, steps, burn_in)
  target_features, _ = replay_features(networks, target_policy_params, steps, burn_in)
  return sequence_losses.retrace_critic_loss(
      critic_parameters(networks, critic_params, features),
      critic_parameters(networks, target_critic_params, target_features),
      (target_policy_params["heads"], target_features), (policy_params["heads"], features),
      prior_params, tail, alpha, key,
      networks=networks_lib.replay_networks(networks), prior=prior, discount=discount,
      lambda_=lambda_, num_action_samples=num_action_samples)
