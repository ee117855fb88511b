"""Acting with REQ's policy π ∝ π_prior exp(Q/τ_s), and intertwined expert exploration.

Jeong et al. 2020, https://arxiv.org/abs/2010.08587, §3–4. The policy samples M actions from the
prior, scores them with Q, solves the state's temperature τ_s and resamples one action with the
weights softmax(Q/τ_s); evaluation takes the highest-weighted sample (the τ → 0 limit).
"""

from typing import Optional

import chex
import dm_env
import jax
import jax.numpy as jnp
import numpy as np

from priorax import core
from priorax import types
from priorax.agents import actors
from priorax.agents.req import config as config_lib
from priorax.agents.req import losses
from priorax.agents.req import networks as networks_lib


def make_policy(networks: networks_lib.REQNetworks, config: config_lib.REQConfig,
                evaluation: bool):
  """Returns `policy(params: learning.PolicyParams, key, observation) -> action`, unbatched."""

  def policy(params, key, observation):
    batched = jax.tree_util.tree_map(lambda x: jnp.expand_dims(x, 0), observation)
    sample_key, resample_key = jax.random.split(key)
    samples = losses.evaluate_prior_samples(
        params.prior, params.critic, batched, sample_key, networks=networks,
        num_samples=config.num_samples, epsilon=config.epsilon, dual_steps=config.dual_steps)
    if evaluation:
      index = jnp.argmax(samples.q[0])
    else:
      index = losses.resample(resample_key, samples.q[0], samples.temperature[0])
    return samples.actions[0, index]

  return policy


class IntertwinedActor(core.Actor):
  """An actor whose episodes are, at random, intertwined with an expert's (Jeong et al. 2020, §4).

  At each episode's start the episode is intertwined with probability `p_intertwine` (always, for
  the actor's first `expert_episodes` episodes, with `p_rho` = 1: pure expert rollouts mixed into
  the replay); in an intertwined episode each step executes the expert's action with probability
  `p_rho`, otherwise the agent's. The expert's action is read from the observation
  (`config.EXPERT_ACTION_KEY`, put there by `experts.ExpertActionWrapper` on the CPU, next to
  the simulator it needs); an observation without it leaves the agent in charge. The executed
  action is what the adder records.

  The intertwining decisions use their own numpy generator, seeded from the actor's key at
  construction; a resumed run draws a fresh stream and repeats the `expert_episodes` warm-up.
  """

  def __init__(self, actor: actors.GenericActor, *, p_intertwine: float, p_rho: float,
               expert_episodes: int, seed: int):
    self._actor = actor
    self._p_intertwine = p_intertwine
    self._p_rho = p_rho
    self._expert_episodes = expert_episodes
    self._rng = np.random.default_rng(seed)
    self._episodes = 0
    self._p_expert_step = 0.0  # Of the current episode.

  def observe_first(self, timestep: dm_env.TimeStep) -> None:
    if self._episodes < self._expert_episodes:
      self._p_expert_step = 1.0
    elif self._rng.uniform() < self._p_intertwine:
      self._p_expert_step = self._p_rho
    else:
      self._p_expert_step = 0.0
    self._episodes += 1
    self._actor.observe_first(timestep)

  def select_action(self, observation: types.Observation) -> np.ndarray:
    expert_action = observation.get(config_lib.EXPERT_ACTION_KEY)
    if (expert_action is not None and self._p_expert_step > 0.0
        and self._rng.uniform() < self._p_expert_step):
      return np.asarray(expert_action, np.float32)
    return self._actor.select_action(observation)

  def observe(self, action, next_timestep: dm_env.TimeStep) -> None:
    self._actor.observe(action, next_timestep)

  def update(self, wait: bool = False) -> None:
    self._actor.update(wait)

  @property
  def key(self) -> chex.PRNGKey:
    """The agent's RNG key (saved in checkpoints so a resumed run continues its stream)."""
    return self._actor.key

  @key.setter
  def key(self, value: chex.PRNGKey) -> None:
    self._actor.key = value


def intertwining_seed(key: chex.PRNGKey) -> int:
  """A numpy seed drawn from a JAX key (for `IntertwinedActor`)."""
  return int(jax.random.randint(key, (), 0, np.iinfo(np.int32).max))


def make_actor(policy, variable_source: core.VariableSource, key: chex.PRNGKey,
               config: config_lib.REQConfig, adder: Optional[object] = None) -> core.Actor:
  """A `GenericActor` of `policy`; one that records (has an adder) also intertwines the expert,
  an evaluator never does."""
  client = actors.VariableClient(variable_source, "policy",
                                 update_period=config.variable_update_period)
  actor_key, intertwining_key = jax.random.split(key)
  actor = actors.GenericActor(policy, client, actor_key, adder)
  if adder is None:
    return actor
  return IntertwinedActor(actor, p_intertwine=config.p_intertwine, p_rho=config.p_rho,
                          expert_episodes=config.expert_episodes,
                          seed=intertwining_seed(intertwining_key))
