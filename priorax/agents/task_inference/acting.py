"""The recurrent policy of `task_inference` for acting, with the extras its learner needs."""

import jax
import jax.numpy as jnp

from priorax.agents.kl_svg0 import sequence_losses
from priorax.agents.task_inference import networks as networks_lib
from priorax.networks import distributions
from priorax.networks import recurrent


def make_policy(networks: networks_lib.TaskInferenceNetworks, evaluation: bool):
  """Returns `policy(params, key, core_input, state) -> ((action, extras), next_state)` for one
  unbatched step (`actors.RecurrentActor(..., has_extras=True)`).

  The core steps on (x_t, a_{t−1}, r_{t−1}) without `task`; the heads read its features (and, for
  task_inference and oracle, the observation; only oracle's reads `task`). a = tanh(u), u ~ π
  (u = its mean when evaluating); the extras are log μ(a|·) and u, as for `kl_svg0`'s Retrace
  learner.
  """

  def policy(params, key, inputs: recurrent.CoreInput, state):
    batched_inputs, batched_state = jax.tree_util.tree_map(
        lambda x: jnp.expand_dims(x, 0), (inputs, state))
    features, next_state = networks.core.step(params["core"], batched_inputs, batched_state)
    gaussian = networks.heads_apply(params["heads"], features, batched_inputs.observation).policy
    u = gaussian.mean if evaluation else distributions.sample_pre_tanh(gaussian, key)
    extras = {sequence_losses.EXTRAS_LOG_PROB: distributions.tanh_gaussian_log_prob(gaussian, u)[0],
              sequence_losses.EXTRAS_PRE_TANH_ACTION: u[0]}
    return (jnp.tanh(u[0]), extras), jax.tree_util.tree_map(lambda x: x[0], next_state)

  return policy
