"""Networks of `task_inference`: a recurrent core, policy and belief heads, and twin critics.

Humplik et al. 2019 (https://arxiv.org/abs/1905.06424), §3–4. One core (`recurrent.
make_recurrent_network`, an MLP and LSTM over (x_t, a_{t−1}, r_{t−1}) with `task` left out) gives
features h_t; what reads them depends on the variant:
  rl2             π(a | h_t); the core is trained by RL alone (RL², Duan et al. 2016).
  rl2_aux         π(a | h_t) and a belief head q(task | h_t) whose loss also trains the core.
  task_inference  the core is the belief network b_t = f(history), trained only by −log q(task|h_t);
                  π(a | x_t, sg(belief features)), x_t without `task`.
  oracle          π(a | x_t, task); the belief network is trained as in task_inference, only to
                  measure how well the task can be inferred (the policy never reads it).
The belief is a diagonal Gaussian over a vector descriptor (features: mean and scale) or, for a
descriptor of one-hot rows like Numpad's [rows, tiles], a categorical per row (features: the
rows' log-probabilities).

The critics are `kl_svg0`'s twin critics. For rl2 and rl2_aux they are recurrent: Q(h_t, a_t) reads
the shared core's features h_t and never `task`, so policy and critic are trained end to end by RL
alone (Duan et al. 2016). They share the policy's core rather than owning one, as in R2D2
(Kapturowski et al. 2019, §3), where one recurrent network is trained from the state its actor
stored: the actor stores only the core state it runs, so a critic with its own LSTM would have no
stored state to start its replay from. The critic loss therefore trains the core too (`learning`).
For task_inference and oracle the critics are feed-forward and privileged: they see every
observation key, the true task included (allowed by METHODS §7).
"""

import dataclasses
from typing import Any, Callable, NamedTuple, Optional

import chex
import haiku as hk
import jax
import jax.numpy as jnp
import numpy as np
from dm_env import specs as dm_specs

from priorax import specs
from priorax.agents.kl_svg0 import config as kl_config
from priorax.agents.kl_svg0 import networks as kl_networks
from priorax.agents.task_inference import config as config_lib
from priorax.networks import distributions
from priorax.networks import heads as heads_lib
from priorax.networks import recurrent
from priorax.networks import torsos

TASK_KEY = "task"
# The key under which the recurrent critics read the core's features h_t.
FEATURES_KEY = "core_features"
# The variants whose critics read h_t (trained by RL alone) rather than the privileged observation.
RECURRENT_CRITIC_VARIANTS = ("rl2", "rl2_aux")


class Belief(NamedTuple):
  """q(task | h_t): a diagonal Gaussian (`loc`, `scale` [..., *task shape]) or per-row categorical
  logits (`loc` [..., rows, classes], `scale` None)."""

  loc: chex.Array
  scale: Optional[chex.Array]


class HeadOutputs(NamedTuple):
  policy: distributions.GaussianParams  # Pre-tanh action Gaussian [..., D].
  belief: Optional[Belief]  # None for rl2.


@dataclasses.dataclass(frozen=True)
class TaskInferenceNetworks:
  """Pure functions; policy parameters are {"core": ..., "heads": ...}.

  Attributes:
    core: the recurrent core; its outputs are the features h_t [..., H].
    heads_init: key -> head parameters.
    heads_apply: (head params, features [M, H], observation [M]) -> HeadOutputs.
    critics: `kl_svg0` networks whose critic_init/critic_apply are the twin critics (its policy
      functions are unused; `replay_networks` swaps in the heads); with `recurrent_critic` they
      read only {FEATURES_KEY: h_t}.
    variant: one of `config.VARIANTS`.
    categorical_task: whether the belief is categorical per row (else Gaussian).
  """

  core: recurrent.RecurrentNetwork
  heads_init: Callable[[chex.PRNGKey], hk.Params]
  heads_apply: Callable[..., HeadOutputs]
  critics: kl_networks.KLSVG0Networks
  variant: str
  categorical_task: bool

  @property
  def has_belief(self) -> bool:
    return self.variant != "rl2"

  @property
  def recurrent_critic(self) -> bool:
    """Whether the critics read the core's features (rl2, rl2_aux) rather than the observation."""
    return self.variant in RECURRENT_CRITIC_VARIANTS

  def init(self, key: chex.PRNGKey) -> hk.Params:
    core_key, heads_key = jax.random.split(key)
    return {"core": self.core.init(core_key), "heads": self.heads_init(heads_key)}


def belief_features(belief: Belief) -> chex.Array:
  """What the task-inference policy reads of the belief: [mean, scale] or the rows'
  log-probabilities, flattened to [..., F]."""
  if belief.scale is None:
    log_probs = jax.nn.log_softmax(belief.loc)
    return jnp.reshape(log_probs, log_probs.shape[:-2] + (-1,))
  return jnp.concatenate([belief.loc, belief.scale], -1)


def make_networks(environment_spec: specs.EnvironmentSpec,
                  config: config_lib.TaskInferenceConfig) -> TaskInferenceNetworks:
  """Builds the variant's networks; the environment must have a `task` observation."""
  observations = environment_spec.observations
  if TASK_KEY not in observations:
    raise ValueError(f"agent task_inference needs an observation {TASK_KEY!r} (a meta: "
                     f"environment); this environment has {sorted(observations)}")
  task_shape = tuple(observations[TASK_KEY].shape)
  categorical = len(task_shape) == 2
  if len(task_shape) > 2:
    raise ValueError(f"the task descriptor has shape {task_shape}; expected a vector or one-hot "
                     f"rows [rows, classes]")
  visible_keys = tuple(sorted(k for k in observations if k != TASK_KEY))
  action_size = int(np.prod(environment_spec.actions.shape))
  variant = config.variant

  core = recurrent.make_recurrent_network(
      environment_spec, lambda h: h, hidden_sizes=config.core_hidden_sizes,
      lstm_size=config.lstm_size, observation_keys=visible_keys)

  def forward(features, observation) -> HeadOutputs:
    belief = None
    if variant != "rl2":
      size = int(np.prod(task_shape))
      if categorical:
        logits = hk.Linear(size, name="belief_logits")(features)
        belief = Belief(jnp.reshape(logits, features.shape[:-1] + task_shape), None)
      else:
        loc = hk.Linear(size, name="belief_loc")(features)
        scale = jax.nn.softplus(hk.Linear(size, name="belief_scale")(features))
        belief = Belief(loc, scale + config.belief_min_scale)
    if variant in ("rl2", "rl2_aux"):
      policy_input = features
    elif variant == "task_inference":
      # The policy conditions on the belief, never trains it (Humplik et al. 2019, §4).
      policy_input = jnp.concatenate(
          [torsos.concat_observation(observation, visible_keys),
           jax.lax.stop_gradient(belief_features(belief))], -1)
    else:  # oracle
      policy_input = jnp.concatenate(
          [torsos.concat_observation(observation, visible_keys),
           torsos.concat_observation(observation, (TASK_KEY,))], -1)
    torso = torsos.LayerNormMLP(config.policy_hidden_sizes, name="policy_torso")
    policy = heads_lib.GaussianHead(action_size, min_scale=config.min_scale,
                                    name="policy_head")(torso(policy_input))
    return HeadOutputs(policy, belief)

  transformed = hk.without_apply_rng(hk.transform(forward))
  dummy_features = np.zeros((1, config.lstm_size), np.float32)
  dummy_observation = kl_networks.dummy_observation(environment_spec)
  critic_spec = environment_spec
  if variant in RECURRENT_CRITIC_VARIANTS:
    critic_spec = environment_spec._replace(observations={
        FEATURES_KEY: dm_specs.Array((config.lstm_size,), np.float32)})
  critics = kl_networks.make_networks(critic_spec, kl_config.KLSVG0Config(
      critic_hidden_sizes=config.critic_hidden_sizes, min_scale=config.min_scale))
  return TaskInferenceNetworks(
      core=core,
      heads_init=lambda key: transformed.init(key, dummy_features, dummy_observation),
      heads_apply=transformed.apply,
      critics=critics,
      variant=variant,
      categorical_task=categorical)


def replay_networks(networks: TaskInferenceNetworks) -> kl_networks.KLSVG0Networks:
  """`kl_svg0` networks over precomputed core features, so that `kl_svg0.sequence_losses` apply
  unchanged.

  Their policy parameters are the pair (head params, features [M, H]) for the flattened states [M]
  of the batch, so gradients reach the features. With `recurrent_critic`, the critic parameters
  are likewise (critic params, features [M, H]); the critics may be called on the batch repeated K
  times, sample-major (`sequence_losses.expected_q`), and the features are repeated to match.
  Otherwise the critic parameters are the critics' own.
  """

  def policy_apply(params_and_features: tuple[Any, chex.Array], observation):
    params, features = params_and_features
    return networks.heads_apply(params, features, observation).policy

  critic_apply = networks.critics.critic_apply
  if networks.recurrent_critic:

    def critic_apply(params_and_features: tuple[Any, chex.Array], observation, action):
      del observation  # h_t already summarises it, without `task`.
      params, features = params_and_features
      repeats = action.shape[0] // features.shape[0]
      return networks.critics.critic_apply(
          params, {FEATURES_KEY: jnp.tile(features, (repeats, 1))}, action)

  return dataclasses.replace(networks.critics, policy_init=None, policy_apply=policy_apply,
                             critic_apply=critic_apply)
