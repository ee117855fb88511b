"""Policies of `kl_svg0` for acting: a sample of π(.|s) when training, its mode when evaluating."""

import jax
import jax.numpy as jnp

from priorax.agents.kl_svg0 import networks as networks_lib
from priorax.agents.kl_svg0 import sequence_losses
from priorax.networks import distributions


def make_policy(networks: networks_lib.KLSVG0Networks, evaluation: bool,
                with_extras: bool = False):
  """Returns `policy(params, key, observation) -> action` for one unbatched observation.

  With `with_extras` it returns `(action, extras)`, the extras being what the Retrace learner needs
  of the behaviour policy μ: log μ(a|s) (`sequence_losses.EXTRAS_LOG_PROB`) and the pre-squash
  action u, a = tanh(u) (`EXTRAS_PRE_TANH_ACTION`), so that log π'(a|s) stays exact where tanh(u)
  rounds to ±1 in float32.
  """

  def policy(params, key, observation):
    batched = jax.tree_util.tree_map(lambda x: jnp.expand_dims(x, 0), observation)
    gaussian = networks.policy_apply(params, batched)
    u = gaussian.mean if evaluation else distributions.sample_pre_tanh(gaussian, key)
    action = jnp.tanh(u[0])
    if not with_extras:
      return action
    extras = {sequence_losses.EXTRAS_LOG_PROB: distributions.tanh_gaussian_log_prob(gaussian, u)[0],
              sequence_losses.EXTRAS_PRE_TANH_ACTION: u[0]}
    return action, extras

  return policy
