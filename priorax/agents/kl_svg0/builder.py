"""Wires `kl_svg0`'s pieces: replay table, adder, dataset, prior, learner, policies, actor.

Reverb is named only in annotations here (the tables and adder come from `priorax.replay`, which
imports it on use), so the builder imports, and makes learners, on an accelerator machine without
Reverb (DESIGN.md §9; `benchmarks/learner_accelerator.py` runs there).
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any, Iterator, List, Optional, Sequence, Union

import jax
import numpy as np
import optax

from priorax import core
from priorax import priors
from priorax import replay
from priorax import specs
from priorax import types
from priorax.agents import actors
from priorax.agents import saved_policy
from priorax.agents.kl_svg0 import acting
from priorax.agents.kl_svg0 import config as config_lib
from priorax.agents.kl_svg0 import hierarchical
from priorax.agents.kl_svg0 import learning
from priorax.agents.kl_svg0 import networks as networks_lib
from priorax.agents.kl_svg0 import sequence_learning
from priorax.agents.kl_svg0 import sequence_losses
from priorax.stream import soft_reset
from priorax.utils import checkpointing
from priorax.utils import counting
from priorax.utils import loggers

if TYPE_CHECKING:
  import reverb

REPLAY_TABLE = "priority_table"


class KLSVG0Builder:
  """Builder of the KL-regularised SVG(0) agent (Acme's builder interface)."""

  def __init__(self, config: config_lib.KLSVG0Config):
    self._config = config
    self._transferred: Optional[priors.TransferredPieces] = None

  @property
  def config(self) -> config_lib.KLSVG0Config:
    return self._config

  def make_networks(self, environment_spec: specs.EnvironmentSpec
                    ) -> networks_lib.KLSVG0Networks | hierarchical.HierarchicalNetworks:
    if self._config.prior == "hierarchical":
      try:
        return hierarchical.make_networks(environment_spec, self._config)
      except ValueError as e:  # An unknown key: a configuration error, reported before training.
        raise core.ConfigError(str(e)) from None
    return networks_lib.make_networks(environment_spec, self._config)

  def transferred_pieces(self) -> priors.TransferredPieces:
    """π_L and π0_H of the hierarchical run `prior_from` (read once)."""
    if self._transferred is None:
      self._transferred = priors.load_transferred_pieces(
          self._config.prior_from, hierarchical.architecture(self._config))
    return self._transferred

  def make_prior(self, environment_spec: specs.EnvironmentSpec) -> priors.Prior:
    action_size = int(np.prod(environment_spec.actions.shape))
    c = self._config
    if c.prior == "uniform":
      return priors.make_uniform_prior(action_size)
    if c.prior == "learned" and c.prior_from:
      return load_learned_prior(c.prior_from, environment_spec.observations, action_size,
                                observation_keys=c.prior_observation_keys,
                                hidden_sizes=c.prior_hidden_sizes, trainable=not c.freeze_prior)
    if c.prior == "learned":
      try:
        return priors.make_learned_prior(
            environment_spec.observations, action_size=action_size,
            hidden_sizes=c.prior_hidden_sizes, observation_keys=c.prior_observation_keys,
            layer_norm=c.layer_norm, min_scale=c.min_scale)
      except ValueError as e:  # An unknown key: a configuration error, reported before training.
        raise core.ConfigError(str(e)) from None
    if c.prior == "hierarchical":
      transferred = self.transferred_pieces().prior_params if c.prior_from else None
      try:
        return priors.make_hierarchical_prior(
            environment_spec.observations, latent_size=c.latent_size,
            hidden_sizes=c.prior_hidden_sizes, observation_keys=c.prior_observation_keys,
            layer_norm=c.layer_norm, min_scale=c.min_scale, params=transferred,
            trainable=not c.freeze_prior)
      except ValueError as e:
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
    policy_optimizer = optax.adam(c.policy_learning_rate)
    if c.prior == "hierarchical" and c.prior_from:  # Reusing π_L (and π0_H, see `make_prior`).
      try:
        networks = hierarchical.with_low_level_params(
            networks, self.transferred_pieces().low_level_params)
      except ValueError as e:
        raise checkpointing.CheckpointError(f"prior_from={c.prior_from!r}: {e}") from None
      if c.freeze_low_level:
        policy_optimizer = hierarchical.freeze_low_level(policy_optimizer)
    if self._retrace:
      return sequence_learning.KLSVG0RetraceLearner(
          networks, prior, iterator, key,
          policy_optimizer=policy_optimizer,
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
          counter=counter, logger=logger, num_sgd_steps_per_step=c.num_sgd_steps_per_step)
    return learning.KLSVG0Learner(
        networks, prior, iterator, key,
        policy_optimizer=policy_optimizer,
        critic_optimizer=optax.adam(c.critic_learning_rate),
        alpha_optimizer=optax.adam(c.alpha_learning_rate),
        init_alpha=c.init_alpha, tune_alpha=c.tune_alpha,
        target_kl=self.target_kl(environment_spec),
        target_update_rate=c.target_update_rate,
        critic_soft_reset=soft_reset.SoftResetConfig() if c.critic_soft_reset else None,
        prior_optimizer=optax.adam(c.prior_learning_rate),
        counter=counter, logger=logger, num_sgd_steps_per_step=c.num_sgd_steps_per_step)

  def make_policy(self, networks: networks_lib.KLSVG0Networks, evaluation: bool):
    """The Retrace learner's policies also return the behaviour extras the adder stores."""
    if self._config.prior == "hierarchical":
      return hierarchical.make_policy(networks, evaluation)
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
  """π0 = the policy of the latest checkpoint of a `kl_svg0` run or a distilled student, with that
  run's architecture (`saved_policy`)."""
  saved = saved_policy.load_saved_policy(run_dir, name="prior_run_dir")
  if saved.action_size != action_size:
    raise checkpointing.CheckpointError(
        f"prior_run_dir={run_dir!r}: its policy has {saved.action_size} actions; this environment "
        f"has {action_size}")
  architecture = saved.run["agent_config"]
  return priors.make_fixed_prior(
      saved.params, action_size=action_size, hidden_sizes=architecture["policy_hidden_sizes"],
      observation_keys=saved.observation_keys, layer_norm=architecture["layer_norm"],
      min_scale=architecture["min_scale"])


def load_learned_prior(run_dir: str, observation_spec, action_size: int, *,
                       observation_keys: Sequence[str], hidden_sizes: Sequence[int],
                       trainable: bool) -> priors.Prior:
  """π0(a | x_D) = the learned prior of the latest checkpoint of a `kl_svg0` run (transfer).

  Galashov et al. 2019 (https://arxiv.org/abs/1905.01240), §4: a default policy trained on a
  family of tasks regularises learning of a new one. The prior must fit this run and environment:
  the same keys x_D (`observation_keys`) and torso (`hidden_sizes`) as it was trained with, the same
  action size, and every key of x_D present with the shape it was trained on. A mismatch is refused
  rather than silently re-wired. Its `layer_norm` and `min_scale` are the saved run's.

  Args:
    run_dir: a `kl_svg0` run trained with `prior='learned'`.
    observation_spec: this environment's observation specs by key.
    action_size: this environment's D.
    observation_keys, hidden_sizes: what this run's config asks the prior to see and be.
    trainable: False freezes π0 (the learner never updates it); True keeps distilling it.

  Raises:
    CheckpointError: the run is unreadable, not a learned-prior run, or does not fit.
  """
  run_config, data = checkpointing.load_run(run_dir, field="prior_from", agent="kl_svg0")
  agent_config = run_config["agent_config"]
  if agent_config.get("prior") != "learned":
    raise checkpointing.CheckpointError(
        f"prior_from={run_dir!r} trained prior={agent_config.get('prior')!r}; expected a run "
        f"with prior='learned'")
  saved_keys = tuple(agent_config["prior_observation_keys"])
  if tuple(observation_keys) != saved_keys:
    raise checkpointing.CheckpointError(
        f"prior_from={run_dir!r}: its prior sees {list(saved_keys)}; this run's "
        f"prior_observation_keys={list(observation_keys)}")
  if tuple(hidden_sizes) != tuple(agent_config["prior_hidden_sizes"]):
    raise checkpointing.CheckpointError(
        f"prior_from={run_dir!r}: its prior has prior_hidden_sizes="
        f"{list(agent_config['prior_hidden_sizes'])}; this run's are {list(hidden_sizes)}")
  missing = [k for k in saved_keys if k not in observation_spec]
  if missing:
    raise checkpointing.CheckpointError(
        f"prior_from={run_dir!r}: its prior sees {missing}, absent from this environment's "
        f"observations {sorted(observation_spec)}")
  params = data["learner_state"]["prior_params"]
  saved_action_size = params["gaussian_head/mean"]["b"].shape[-1]
  if saved_action_size != action_size:
    raise checkpointing.CheckpointError(
        f"prior_from={run_dir!r}: its prior has {saved_action_size} actions; this environment "
        f"has {action_size}")
  fresh = priors.make_learned_prior(
      observation_spec, action_size=action_size,
      hidden_sizes=agent_config["prior_hidden_sizes"], observation_keys=saved_keys,
      layer_norm=agent_config["layer_norm"], min_scale=agent_config["min_scale"])
  # Shapes of a prior built for this environment's keys: they differ iff a key's size changed.
  expected = jax.tree_util.tree_map(np.shape, jax.eval_shape(fresh.init, jax.random.PRNGKey(0)))
  if jax.tree_util.tree_map(np.shape, params) != expected:
    raise checkpointing.CheckpointError(
        f"prior_from={run_dir!r}: the sizes of its keys {list(saved_keys)} differ from this "
        f"environment's {[observation_spec[k].shape for k in saved_keys]}")
  return dataclasses.replace(fresh, params=params, init=None, trainable=trainable)
