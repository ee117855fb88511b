"""Wires `kl_svg0`'s pieces: replay table, adder, dataset, prior, learner, policies, actor."""

import json
import os
from typing import Any, Iterator, List, Optional, Union

import jax
import numpy as np
import optax
import reverb

from priorax import core
from priorax import priors
from priorax import replay
from priorax import specs
from priorax import types
from priorax.agents import actors
from priorax.agents.kl_svg0 import acting
from priorax.agents.kl_svg0 import config as config_lib
from priorax.agents.kl_svg0 import learning
from priorax.agents.kl_svg0 import networks as networks_lib
from priorax.agents.kl_svg0 import sequence_learning
from priorax.agents.kl_svg0 import sequence_losses
from priorax.stream import soft_reset
from priorax.utils import checkpointing
from priorax.utils import counting
from priorax.utils import loggers

REPLAY_TABLE = "priority_table"


class KLSVG0Builder:
  """Builder of the KL-regularised SVG(0) agent (Acme's builder interface)."""

  def __init__(self, config: config_lib.KLSVG0Config):
    self._config = config

  @property
  def config(self) -> config_lib.KLSVG0Config:
    return self._config

  def make_networks(self, environment_spec: specs.EnvironmentSpec) -> networks_lib.KLSVG0Networks:
    return networks_lib.make_networks(environment_spec, self._config)

  def make_prior(self, environment_spec: specs.EnvironmentSpec) -> priors.Prior:
    action_size = int(np.prod(environment_spec.actions.shape))
    c = self._config
    if c.prior == "uniform":
      return priors.make_uniform_prior(action_size)
    if c.prior == "learned":
      try:
        return priors.make_learned_prior(
            environment_spec.observations, action_size=action_size,
            hidden_sizes=c.prior_hidden_sizes, observation_keys=c.prior_observation_keys,
            layer_norm=c.layer_norm, min_scale=c.min_scale)
      except ValueError as e:  # An unknown key: a configuration error, reported before training.
        raise core.ConfigError(str(e)) from None
    return load_policy_prior(c.prior_run_dir, action_size)

  def target_kl(self, environment_spec: specs.EnvironmentSpec) -> float:
    """The α target: d·log 2 − target_entropy for the uniform prior (target entropy −d by
    default, as in SAC), else `target_kl`."""
    if self._config.prior != "uniform":
      return self._config.target_kl
    action_size = int(np.prod(environment_spec.actions.shape))
    target_entropy = self._config.target_entropy
    if target_entropy is None:
      target_entropy = -float(action_size)
    return action_size * float(np.log(2.0)) - target_entropy

  @property
  def _retrace(self) -> bool:
    return self._config.learner == "retrace"

  def make_replay_tables(self, environment_spec: specs.EnvironmentSpec) -> List[reverb.Table]:
    c = self._config
    if self._retrace:
      signature = replay.SequenceAdder.signature(
          environment_spec, c.sequence_length + 1,
          extras_spec=behaviour_extras_spec(environment_spec))
    else:
      signature = replay.NStepTransitionAdder.signature(environment_spec)
    return [replay.make_uniform_table(
        REPLAY_TABLE,
        max_size=max(1, c.max_replay_size // c.steps_per_item),
        min_size_to_sample=max(1, c.min_replay_size // c.steps_per_item),
        samples_per_insert=c.samples_per_insert,
        signature=signature)]

  def make_adder(self, client: reverb.Client
                 ) -> Union[replay.NStepTransitionAdder, replay.SequenceAdder]:
    if self._retrace:
      return replay.SequenceAdder(client, REPLAY_TABLE,
                                  sequence_length=self._config.sequence_length + 1,
                                  period=self._config.sequence_period)
    return replay.NStepTransitionAdder(client, REPLAY_TABLE, n_step=self._config.n_step,
                                       discount=self._config.discount)

  def make_dataset_iterator(self, server_address: str) -> Iterator[Any]:
    return replay.make_dataset_iterator(server_address, REPLAY_TABLE, self._config.batch_size,
                                        device=jax.devices()[0])

  def make_learner(self, networks: networks_lib.KLSVG0Networks, prior: priors.Prior,
                   iterator: Iterator[types.Transition], key, environment_spec,
                   counter: Optional[counting.Counter] = None,
                   logger: Optional[loggers.Logger] = None) -> learning.KLSVG0Learner:
    c = self._config
    if self._retrace:
      return sequence_learning.KLSVG0RetraceLearner(
          networks, prior, iterator, key,
          policy_optimizer=optax.adam(c.policy_learning_rate),
          critic_optimizer=optax.adam(c.critic_learning_rate),
          alpha_optimizer=optax.adam(c.alpha_learning_rate),
          init_alpha=c.init_alpha, tune_alpha=c.tune_alpha,
          target_kl=self.target_kl(environment_spec),
          options=sequence_learning.RetraceOptions(
              discount=c.discount, lambda_=c.retrace_lambda,
              num_action_samples=c.num_action_samples, entropy_cost=c.entropy_cost,
              target_update_period=c.target_update_period),
          critic_soft_reset=soft_reset.SoftResetConfig() if c.critic_soft_reset else None,
          prior_optimizer=optax.adam(c.prior_learning_rate),
          counter=counter, logger=logger)
    return learning.KLSVG0Learner(
        networks, prior, iterator, key,
        policy_optimizer=optax.adam(c.policy_learning_rate),
        critic_optimizer=optax.adam(c.critic_learning_rate),
        alpha_optimizer=optax.adam(c.alpha_learning_rate),
        init_alpha=c.init_alpha, tune_alpha=c.tune_alpha,
        target_kl=self.target_kl(environment_spec),
        target_update_rate=c.target_update_rate,
        critic_soft_reset=soft_reset.SoftResetConfig() if c.critic_soft_reset else None,
        prior_optimizer=optax.adam(c.prior_learning_rate),
        counter=counter, logger=logger)

  def make_policy(self, networks: networks_lib.KLSVG0Networks, evaluation: bool):
    """The Retrace learner's policies also return the behaviour extras the adder stores."""
    return acting.make_policy(networks, evaluation, with_extras=self._retrace)

  def make_actor(self, policy, variable_source, key, adder=None) -> actors.GenericActor:
    client = actors.VariableClient(variable_source, "policy",
                                   update_period=self._config.variable_update_period)
    return actors.GenericActor(policy, client, key, adder, has_extras=self._retrace)


def behaviour_extras_spec(environment_spec: specs.EnvironmentSpec):
  """Specs of the extras `acting.make_policy(..., with_extras=True)` returns per step."""
  action_shape = environment_spec.actions.shape
  return {sequence_losses.EXTRAS_LOG_PROB: jax.ShapeDtypeStruct((), np.float32),
          sequence_losses.EXTRAS_PRE_TANH_ACTION: jax.ShapeDtypeStruct(action_shape, np.float32)}


def load_policy_prior(run_dir: str, action_size: int) -> priors.Prior:
  """π0 = the policy of the latest checkpoint of a `kl_svg0` run, with that run's architecture."""
  config_path = os.path.join(run_dir, "config.json")
  try:
    with open(config_path) as f:
      run_config = json.load(f)
  except (OSError, json.JSONDecodeError) as e:
    raise checkpointing.CheckpointError(
        f"prior_run_dir={run_dir!r}: cannot read {config_path} ({e})") from None
  if run_config.get("agent") != "kl_svg0":
    raise checkpointing.CheckpointError(
        f"prior_run_dir={run_dir!r} holds a {run_config.get('agent')!r} run; expected kl_svg0")
  data = checkpointing.Checkpointer(os.path.join(run_dir, "checkpoints")).load_latest()
  if data is None:
    raise checkpointing.CheckpointError(f"prior_run_dir={run_dir!r} has no checkpoint")
  agent_config = run_config["agent_config"]
  params = data["learner_state"]["policy_params"]
  saved_action_size = params["gaussian_head/mean"]["b"].shape[-1]
  if saved_action_size != action_size:
    raise checkpointing.CheckpointError(
        f"prior_run_dir={run_dir!r}: its policy has {saved_action_size} actions; this environment "
        f"has {action_size}")
  keys = agent_config.get("policy_observation_keys")
  return priors.make_fixed_prior(
      params, action_size=action_size, hidden_sizes=agent_config["policy_hidden_sizes"],
      observation_keys=tuple(keys) if keys else None, layer_norm=agent_config["layer_norm"],
      min_scale=agent_config["min_scale"])
