"""Wires `req`'s pieces: replay table, adder, dataset, learner, policies, actor."""

from typing import Iterator, List, Optional

import jax
import optax
import reverb

from priorax import core
from priorax import replay
from priorax import specs
from priorax import types
from priorax.agents.req import acting
from priorax.agents.req import config as config_lib
from priorax.agents.req import learning
from priorax.agents.req import networks as networks_lib
from priorax.agents.req import transfer
from priorax.replay import episodes
from priorax.utils import counting
from priorax.utils import loggers

REPLAY_TABLE = "priority_table"


class REQBuilder:
  """Builder of REQ (Acme's builder interface).

  Online, acting and learning are coupled by a samples-per-insert limiter; offline
  (`config.offline_dataset`), the table holds the dataset's transitions and only limits sampling
  to a non-empty table.
  """

  def __init__(self, config: config_lib.REQConfig):
    self._config = config

  @property
  def config(self) -> config_lib.REQConfig:
    return self._config

  @property
  def offline(self) -> bool:
    return self._config.offline_dataset is not None

  def make_networks(self, environment_spec: specs.EnvironmentSpec) -> networks_lib.REQNetworks:
    try:
      return networks_lib.make_networks(environment_spec, self._config)
    except ValueError as e:  # An unknown key: a configuration error, reported before training.
      raise core.ConfigError(str(e)) from None

  def make_prior(self, environment_spec: specs.EnvironmentSpec) -> None:
    """REQ's prior is one of its own networks, trained by its learner: no external prior."""
    del environment_spec

  def make_replay_tables(self, environment_spec: specs.EnvironmentSpec) -> List[reverb.Table]:
    c = self._config
    return [replay.make_uniform_table(
        REPLAY_TABLE,
        max_size=c.max_replay_size,
        min_size_to_sample=1 if self.offline else c.min_replay_size,
        samples_per_insert=None if self.offline else c.samples_per_insert,
        signature=replay.NStepTransitionAdder.signature(environment_spec))]

  def make_adder(self, client: reverb.Client) -> replay.NStepTransitionAdder:
    return replay.NStepTransitionAdder(client, REPLAY_TABLE, n_step=self._config.n_step,
                                       discount=self._config.discount)

  def load_dataset(self, client: reverb.Client, environment_spec: specs.EnvironmentSpec) -> int:
    """Writes the offline dataset's episodes into the table as n-step transitions; returns the
    number of environment steps read."""
    return episodes.replay_into(self._config.offline_dataset, self.make_adder(client),
                                observation_keys=environment_spec.observations.keys())

  def make_dataset_iterator(self, server_address: str) -> Iterator[types.Transition]:
    return replay.make_dataset_iterator(server_address, REPLAY_TABLE, self._config.batch_size,
                                        device=jax.devices()[0])

  def make_learner(self, networks: networks_lib.REQNetworks, prior: None,
                   iterator: Iterator[types.Transition], key, environment_spec,
                   counter: Optional[counting.Counter] = None,
                   logger: Optional[loggers.Logger] = None) -> learning.REQLearner:
    """With `transfer` set, the learner starts from `prior_from`'s networks (`transfer.py`)."""
    del prior, environment_spec
    c = self._config
    initial_params = None
    if c.transfer != "none":
      key, transfer_key = jax.random.split(key)
      initial_params = transfer.load_transferred_params(c, networks, transfer_key)
    return learning.REQLearner(
        networks, iterator, key, c,
        prior_optimizer=transfer.prior_optimizer(optax.adam(c.learning_rate), c),
        critic_optimizer=transfer.critic_optimizer(optax.adam(c.learning_rate), c),
        dual_optimizer=optax.adam(c.dual_learning_rate),
        counter=counter, logger=logger, initial_params=initial_params)

  def make_policy(self, networks: networks_lib.REQNetworks, evaluation: bool):
    return acting.make_policy(networks, self._config, evaluation)

  def make_actor(self, policy, variable_source, key, adder=None):
    return acting.make_actor(policy, variable_source, key, self._config, adder)
