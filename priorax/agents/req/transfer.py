"""IWPLA: reuse a meta-trained prior and critic torso on a held-out task.

Galashov, Sygnowski, Desjardins, Humplik, Hasenclever, Hafner, Heess, Teh 2020, "Importance
weighted policy learning and adaptation", https://arxiv.org/abs/2009.04875 (METHODS §4b). The
policy is REQ's π(a|s) ∝ π_prior(a|s) exp(Q(s,a)/τ_s) over M prior samples; what IWPLA adds is the
transfer. A `req` run on a task family (a training task per episode, `family:<name>`) learns a
prior shared by the tasks (blind to the task keys with `prior_observation_keys`) and a critic; a
run on a held-out task (`family:<name>-holdout`) names it in `prior_from` and, with
`transfer="iwpla"`, starts from its prior and its critic's torso with a new head.

Choices where only the abstract could be read (METHODS §4b says "choose"):

- **Task id as input, one head.** The critic of the family run reads every observation key,
  the family's task keys included (e.g. reacher's `to_target`): the task enters as an input, and
  the torso is everything but the last linear layer (`HEAD_MODULE`). One head per task would need
  a task index in every observation and would give the held-out task a head of its own anyway;
  the task keys place the held-out task inside the space the torso was trained on (a target
  between two training targets) and need no change to the environments.
- **The new head starts at zero.** Then Q ≡ 0 on the first step, the importance weights are
  exactly uniform whatever τ_s, and the agent's actions are samples of the transferred prior: the
  exploration bias IWPLA relies on with sparse rewards. After the first update the head's weights
  are non-zero and gradients reach the torso.
- **The prior is kept as trained** and, unless `freeze_prior`, fine-tuned by REQ's
  advantage-filtered regression; the trust-region duals and the optimisers' states start afresh
  (the per-state temperature has no state to transfer).
"""

from typing import Any, Mapping

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax

from priorax.agents.req import config as config_lib
from priorax.agents.req import learning
from priorax.agents.req import networks as networks_lib
from priorax.utils import checkpointing

# The haiku module of the critic's last layer (`heads.ScalarHead`): the head; the rest is the torso.
HEAD_MODULE = "scalar_head"


def is_head(module_name: str) -> bool:
  """Whether a critic parameter module belongs to the head (the last linear layer)."""
  return module_name.split("/", 1)[0] == HEAD_MODULE


def split_critic(critic_params: Mapping[str, Any]) -> tuple[dict, dict]:
  """(torso, head) parameter dicts of a critic."""
  torso = {k: v for k, v in critic_params.items() if not is_head(k)}
  head = {k: v for k, v in critic_params.items() if is_head(k)}
  return torso, head


def load_transferred_params(config: config_lib.REQConfig, networks: networks_lib.REQNetworks,
                            key: chex.PRNGKey) -> learning.PolicyParams:
  """The learner's initial (prior, critic) params for `config.transfer` from `config.prior_from`.

  `transfer="iwpla"`: the saved prior; the saved critic torso with a zero head. `"prior"`: the
  saved prior; a freshly initialised critic (drawn from `key`). Shapes must match this run's
  networks (the same keys, sizes and layers); a mismatch is refused, not re-wired.

  Raises:
    CheckpointError: naming `prior_from`, when the run is unreadable, not a `req` run, or does
      not fit this run's networks.
  """
  run_dir = config.prior_from
  run_config, data = checkpointing.load_run(run_dir, field="prior_from", agent="req")
  saved = data["learner_state"]["policy_params"]
  saved_prior, saved_critic = saved[0], saved[1]  # PolicyParams(prior, critic).
  prior_key, critic_key = jax.random.split(key)
  fresh = learning.PolicyParams(networks.prior_init(prior_key), networks.critic_init(critic_key))
  saved_config = run_config["agent_config"]

  def check(name, got, expected, fields):
    if jax.tree_util.tree_structure(got) != jax.tree_util.tree_structure(expected) or \
        jax.tree_util.tree_map(np.shape, got) != jax.tree_util.tree_map(np.shape, expected):
      settings = "; ".join(f"{f} saved {saved_config.get(f)!r}, now {getattr(config, f)!r}"
                           for f in fields)
      raise checkpointing.CheckpointError(
          f"prior_from={run_dir!r}: its {name} does not fit this run's ({settings}; or the "
          f"environment's observation or action sizes differ)")

  check("prior", saved_prior, fresh.prior,
        ("prior_hidden_sizes", "prior_observation_keys", "layer_norm"))
  prior = jax.tree_util.tree_map(jnp.asarray, saved_prior)
  if config.transfer == "prior":
    return learning.PolicyParams(prior, fresh.critic)
  saved_torso, _ = split_critic(saved_critic)
  fresh_torso, fresh_head = split_critic(fresh.critic)
  check("critic torso", saved_torso, fresh_torso, ("critic_hidden_sizes", "layer_norm"))
  critic = {**jax.tree_util.tree_map(jnp.asarray, saved_torso),
            **jax.tree_util.tree_map(jnp.zeros_like, fresh_head)}
  return learning.PolicyParams(prior, critic)


def critic_optimizer(optimizer: optax.GradientTransformation, config: config_lib.REQConfig
                     ) -> optax.GradientTransformation:
  """`optimizer` on the critic; with `freeze_torso`, the torso's updates are exactly zero."""
  if not config.freeze_torso:
    return optimizer

  def labels(params):
    def label(module):
      return "train" if is_head(module) else "frozen"
    return {module: jax.tree_util.tree_map(lambda _: label(module), leaves)
            for module, leaves in params.items()}

  return optax.multi_transform({"train": optimizer, "frozen": optax.set_to_zero()}, labels)

def prior_optimizer(optimizer: optax.GradientTransformation, config: config_lib.REQConfig
                    ) -> optax.GradientTransformation:
  """`optimizer` on the prior, or exactly zero updates with `freeze_prior`."""
  return optax.set_to_zero() if config.freeze_prior else optimizer
