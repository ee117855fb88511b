"""Policies of `kl_svg0` for acting: a sample of π(.|s) when training, its mode when evaluating."""

import jax
import jax.numpy as jnp

from priorax.agents.kl_svg0 import networks as networks_lib
from priorax.networks import distributions


def make_policy(networks: networks_lib.KLSVG0Networks, evaluation: bool):
  """Returns `policy(params, key, observation) -> action` for one unbatched observation."""

  def policy(params, key, observation):
    batched = jax.tree_util.tree_map(lambda x: jnp.expand_dims(x, 0), observation)
    gaussian = networks.policy_apply(params, batched)
    u = gaussian.mean if evaluation else distributions.sample_pre_tanh(gaussian, key)
    return jnp.tanh(u[0])

  return policy
