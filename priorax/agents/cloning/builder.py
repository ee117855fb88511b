"""Wires distillation: the student network, its replay table and adder, dataset, learner, actors."""

import dataclasses
from typing import Callable, Iterator, List, Optional

import chex
import haiku as hk
import jax
import optax
import reverb

from priorax import core
from priorax import replay
from priorax import specs
from priorax.agents import actors
from priorax.agents.cloning import acting
from priorax.agents.cloning import adders
from priorax.agents.cloning import augmentation
from priorax.agents.cloning import config as config_lib
from priorax.agents.cloning import experts as experts_lib
from priorax.agents.cloning import learning
from priorax.agents.cloning import types as cloning_types
from priorax.agents.kl_svg0 import networks as kl_svg0_networks
from priorax.networks import policies
from priorax.priors import learned
from priorax.utils import counting
from priorax.utils import loggers

REPLAY_TABLE = "demonstrations"


@dataclasses.dataclass(frozen=True)
class StudentNetworks:
  """The student policy: `policy_init(key) -> params`, `policy_apply(params, obs) -> Gaussian`."""

  policy_init: Callable[[chex.PRNGKey], hk.Params]
  policy_apply: Callable
  num_params: int


class CloningBuilder:
  """Builder of a distillation run (Acme's builder interface; the data source is the method)."""

  def __init__(self, config: config_lib.CloningConfig):
    self._config = config

  @property
  def config(self) -> config_lib.CloningConfig:
    return self._config

  def make_networks(self, environment_spec: specs.EnvironmentSpec) -> StudentNetworks:
    c = self._config
    if c.policy_observation_keys is not None:
      try:
        learned.check_observation_keys(c.policy_observation_keys, environment_spec.observations,
                                       name="policy_observation_keys")
      except ValueError as e:
        raise core.ConfigError(str(e)) from None
    action_size = int(environment_spec.actions.shape[-1])
    network = policies.make_gaussian_policy(
        action_size, c.policy_hidden_sizes, observation_keys=c.policy_observation_keys,
        layer_norm=c.layer_norm, min_scale=c.min_scale)
    observation = kl_svg0_networks.dummy_observation(environment_spec)
    init = lambda key: network.init(key, observation)
    num_params = sum(x.size for x in jax.tree_util.tree_leaves(
        jax.eval_shape(init, jax.random.PRNGKey(0))))
    return StudentNetworks(policy_init=init, policy_apply=network.apply, num_params=num_params)

  def make_replay_tables(self, environment_spec: specs.EnvironmentSpec) -> List[reverb.Table]:
    # Data is collected before learning starts (or between DAgger rounds), so no rate limiting.
    return [replay.make_uniform_table(
        REPLAY_TABLE, max_size=self._config.max_replay_size, min_size_to_sample=1,
        signature=adders.DemonstrationAdder.signature(environment_spec, self._config.group_size))]

  def make_adder(self, client: reverb.Client) -> adders.DemonstrationAdder:
    return adders.DemonstrationAdder(client, REPLAY_TABLE)

  def make_dataset_iterator(self, server_address: str) -> Iterator[cloning_types.Demonstration]:
    return replay.make_dataset_iterator(server_address, REPLAY_TABLE, self._config.batch_size,
                                        device=jax.devices()[0])

  def make_learner(self, networks: StudentNetworks, iterator, key: chex.PRNGKey,
                   counter: Optional[counting.Counter] = None,
                   logger: Optional[loggers.Logger] = None) -> learning.CloningLearner:
    return learning.CloningLearner(
        networks.policy_init, networks.policy_apply, iterator, key,
        optimizer=optax.adam(self._config.learning_rate), loss=self._config.loss,
        counter=counter, logger=logger)

  def make_labeller(self, expert: experts_lib.Expert):
    return augmentation.make_labeller(expert, self._config.method)

  def make_policy(self, networks: StudentNetworks, noise: float):
    """The student acting with its mean action plus N(0, noise²)."""
    return acting.make_policy(networks.policy_apply, noise)

  def make_collection_policy(self, networks: StudentNetworks, expert: experts_lib.Expert,
                             beta: float):
    """Acts with the expert (β = 1), the student (β = 0) or DAgger's mixture, with expert_noise."""
    return acting.make_mixture_policy(networks.policy_apply, expert, beta,
                                      self._config.expert_noise)

  def make_actor(self, policy, variable_source, key, adder=None) -> actors.GenericActor:
    return actors.GenericActor(policy, actors.VariableClient(variable_source, "policy"), key,
                               adder)
