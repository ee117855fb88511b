"""Networks of REQ: a tanh-Gaussian prior π_prior(a|s) and one critic Q(s, a). No policy network:
the policy is π ∝ π_prior exp(Q/τ_s), formed from prior samples (`losses`, `acting`).

Neither network sees the expert's action that an environment built with an expert carries in its
observations (`config.EXPERT_ACTION_KEY`): it is a label for the learner and the actor, not an
input, so a run with an expert and its evaluation without one use the same parameters.
"""

import dataclasses
from typing import Callable, Mapping, Tuple

import chex
import haiku as hk
import numpy as np

from priorax import specs
from priorax.agents.kl_svg0 import networks as kl_svg0_networks
from priorax.agents.req import config as config_lib
from priorax.networks import distributions
from priorax.networks import policies


@dataclasses.dataclass(frozen=True)
class REQNetworks:
  """Pure `(init, apply)` pairs.

  Attributes:
    prior_init: key -> prior params.
    prior_apply: (params, observation [B, ...]) -> pre-tanh GaussianParams [B, D].
    critic_init: key -> critic params.
    critic_apply: (params, observation [B, ...], action [B, D]) -> Q [B].
    action_size: D.
    observation_keys: the keys the critic reads.
    prior_observation_keys: the keys the prior reads (`config.prior_observation_keys`).
  """

  prior_init: Callable[[chex.PRNGKey], hk.Params]
  prior_apply: Callable[..., distributions.GaussianParams]
  critic_init: Callable[[chex.PRNGKey], hk.Params]
  critic_apply: Callable[..., chex.Array]
  action_size: int
  observation_keys: Tuple[str, ...]
  prior_observation_keys: Tuple[str, ...]


def network_observation_keys(observation_spec: Mapping[str, object]) -> Tuple[str, ...]:
  """Every observation key except the expert's action, sorted."""
  return tuple(sorted(k for k in observation_spec if k != config_lib.EXPERT_ACTION_KEY))


def make_networks(environment_spec: specs.EnvironmentSpec,
                  config: config_lib.REQConfig) -> REQNetworks:
  """Builds the prior and the critic for an environment's spec.

  Raises:
    ValueError: `config.prior_observation_keys` names a key the observations lack.
  """
  action_size = int(np.prod(environment_spec.actions.shape))
  keys = network_observation_keys(environment_spec.observations)
  prior_keys = keys
  if config.prior_observation_keys is not None:
    prior_keys = tuple(config.prior_observation_keys)
    missing = [k for k in prior_keys if k not in keys]
    if missing:
      raise ValueError(f"prior_observation_keys={list(prior_keys)}: {missing} not among this "
                       f"environment's observation keys {list(keys)}")
  prior = policies.make_gaussian_policy(action_size, config.prior_hidden_sizes,
                                        observation_keys=prior_keys, layer_norm=config.layer_norm,
                                        min_scale=config.min_scale)
  # The same critic architecture as kl_svg0's (one of its twins), reading only `keys`.
  critic = kl_svg0_networks._make_critic(  # pylint: disable=protected-access
      config.critic_hidden_sizes, config.layer_norm, keys)
  observation = {k: np.zeros((1, *environment_spec.observations[k].shape), np.float32)
                 for k in keys}
  action = np.zeros((1, action_size), np.float32)
  return REQNetworks(
      prior_init=lambda key: prior.init(key, observation),
      prior_apply=prior.apply,
      critic_init=lambda key: critic.init(key, observation, action),
      critic_apply=critic.apply,
      action_size=action_size,
      observation_keys=keys,
      prior_observation_keys=prior_keys)
