"""Wires `task_inference`'s pieces: sequence replay, adder, dataset, learner, recurrent actor."""

from typing import Any, Dict, Iterator, List, Optional

import jax
import numpy as np
import optax
import reverb

from priorax import core
from priorax import priors
from priorax import replay
from priorax import specs
from priorax.agents import actors
from priorax.agents.kl_svg0 import builder as kl_builder
from priorax.agents.task_inference import acting
from priorax.agents.task_inference import belief_report
from priorax.agents.task_inference import config as config_lib
from priorax.agents.task_inference import learning
from priorax.agents.task_inference import networks as networks_lib
from priorax.networks import recurrent
from priorax.replay.types import Step
from priorax.utils import counting
from priorax.utils import loggers

REPLAY_TABLE = "priority_table"


class TaskInferenceBuilder:
  """Builder of the meta-RL-as-task-inference agent (Acme's builder interface)."""

  def __init__(self, config: config_lib.TaskInferenceConfig):
    self._config = config
    self._environment_spec: Optional[specs.EnvironmentSpec] = None
    self._networks: Optional[networks_lib.TaskInferenceNetworks] = None

  @property
  def config(self) -> config_lib.TaskInferenceConfig:
    return self._config

  def make_networks(self, environment_spec: specs.EnvironmentSpec
                    ) -> networks_lib.TaskInferenceNetworks:
    try:
      networks = networks_lib.make_networks(environment_spec, self._config)
    except ValueError as e:  # No `task` observation: a configuration error, before training.
      raise core.ConfigError(str(e)) from None
    self._environment_spec, self._networks = environment_spec, networks
    return networks

  def make_prior(self, environment_spec: specs.EnvironmentSpec) -> priors.Prior:
    """The uniform prior: the KL regulariser is −entropy + const (SAC's)."""
    return priors.make_uniform_prior(int(np.prod(environment_spec.actions.shape)))

  def target_kl(self, environment_spec: specs.EnvironmentSpec) -> float:
    """d·log 2 − target_entropy (−d by default, as in SAC): the uniform prior's KL target."""
    action_size = int(np.prod(environment_spec.actions.shape))
    target_entropy = self._config.target_entropy
    if target_entropy is None:
      target_entropy = -float(action_size)
    return action_size * float(np.log(2.0)) - target_entropy

  def make_replay_tables(self, environment_spec: specs.EnvironmentSpec) -> List[reverb.Table]:
    c = self._config
    extras_spec = recurrent.recurrent_extras_spec(
        environment_spec, c.lstm_size, kl_builder.behaviour_extras_spec(environment_spec))
    return [replay.make_uniform_table(
        REPLAY_TABLE,
        max_size=max(1, c.max_replay_size // c.sequence_period),
        min_size_to_sample=max(1, c.min_replay_size // c.sequence_period),
        samples_per_insert=c.samples_per_insert,
        signature=replay.SequenceAdder.signature(environment_spec, c.stored_length,
                                                 extras_spec=extras_spec))]

  def make_adder(self, client: reverb.Client) -> replay.SequenceAdder:
    # The learner only burns in a sequence's first burn_in steps; as many padding steps before an
    # episode put its first steps (e.g. the first trial of point_goal) in a trained part.
    return replay.SequenceAdder(client, REPLAY_TABLE, sequence_length=self._config.stored_length,
                                period=self._config.sequence_period,
                                start_padding=self._config.burn_in)

  def make_dataset_iterator(self, server_address: str) -> Iterator[Any]:
    return replay.make_dataset_iterator(server_address, REPLAY_TABLE, self._config.batch_size,
                                        device=jax.devices()[0])

  def make_learner(self, networks: networks_lib.TaskInferenceNetworks, prior: priors.Prior,
                   iterator: Iterator[Step], key, environment_spec,
                   counter: Optional[counting.Counter] = None,
                   logger: Optional[loggers.Logger] = None) -> learning.TaskInferenceLearner:
    c = self._config
    return learning.TaskInferenceLearner(
        networks, prior, iterator, key,
        policy_optimizer=optax.adam(c.policy_learning_rate),
        critic_optimizer=optax.adam(c.critic_learning_rate),
        alpha_optimizer=optax.adam(c.alpha_learning_rate),
        init_alpha=c.init_alpha, tune_alpha=c.tune_alpha,
        target_kl=self.target_kl(environment_spec),
        options=learning.Options(
            discount=c.discount, lambda_=c.retrace_lambda,
            num_action_samples=c.num_action_samples, entropy_cost=c.entropy_cost,
            target_update_period=c.target_update_period, burn_in=c.burn_in,
            belief_cost=c.aux_cost if c.variant == "rl2_aux" else 1.0),
        counter=counter, logger=logger)

  def make_policy(self, networks: networks_lib.TaskInferenceNetworks, evaluation: bool):
    return acting.make_policy(networks, evaluation)

  def make_actor(self, policy, variable_source, key, adder=None) -> actors.RecurrentActor:
    if self._networks is None:
      raise ValueError("make_actor needs make_networks first (it gives the core's initial state)")
    client = actors.VariableClient(variable_source, "policy",
                                   update_period=self._config.variable_update_period)
    return actors.RecurrentActor(policy, self._networks.core.initial_state(None),
                                 self._environment_spec, client, key, adder, has_extras=True)

  def write_run_report(self, run_dir: str, num_episodes: int) -> Optional[Dict[str, Any]]:
    """After training, for variants with a belief: its error against the step within an episode
    over `num_episodes` episodes (`belief_report`); None for rl2."""
    if self._config.variant == "rl2":
      return None
    return belief_report.write_belief_report(run_dir, num_episodes)
