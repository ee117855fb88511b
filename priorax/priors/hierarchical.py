"""The hierarchical latent prior: π0(a|x_D) = ∫ π0_H(z|x_D) π_L(a|z, x_L) dz.

Tirumala et al. 2019, "Exploiting hierarchy for learning and transfer in KL-regularized RL",
https://arxiv.org/abs/1903.07438; Tirumala et al. 2022, "Behavior priors for efficient
reinforcement learning" (JMLR), §5, https://arxiv.org/abs/2010.14274.

The policy π(a|x) = ∫ π_H(z|x) π_L(a|z, x_L) dz and the prior share the low level π_L, so only the
high levels differ. The KL of the marginals over a is bounded by the KL of the joints over (z, a)
(a marginal never separates two distributions more than the joint does), and the joint KL splits
by the chain rule:

  KL(π(.|x) ‖ π0(.|x)) ≤ KL(π_H(.|x) ‖ π0_H(.|x_D)) + E_{z~π_H} KL(π_L(.|z, x_L) ‖ π_L(.|z, x_L))
                       = KL(π_H(.|x) ‖ π0_H(.|x_D)),

the low-level term being zero. The agent is regularised with this high-level KL: for Gaussian z it
is exact in closed form (`distributions.gaussian_kl`), with no sampling noise, and it is the bound
the papers optimise. π0_H is a Gaussian network over z seeing only the keys x_D (information
asymmetry), trained by distillation E_x KL(sg π_H(.|x) ‖ π0_H(.|x_D)) like the flat learned prior
(`priors.learned`, `agents.kl_svg0.losses.prior_loss`).

Transfer: `load_transferred_pieces` reads π_L's and π0_H's parameters from a finished run, so a new
run reuses them (frozen or fine-tuned) and learns a new π_H.
"""

import dataclasses
import json
from typing import Any, Mapping, NamedTuple, Optional, Sequence

from priorax.priors import base
from priorax.priors import learned
from priorax.utils import checkpointing

# Config fields that fix the shapes and inputs of π_L and π0_H: a run reusing them must match.
TRANSFERRED_ARCHITECTURE_FIELDS = ("latent_size", "low_level_hidden_sizes",
                                   "low_level_observation_keys", "prior_hidden_sizes",
                                   "prior_observation_keys", "layer_norm", "min_scale")


def make_hierarchical_prior(observation_spec: Mapping[str, Any], *, latent_size: int,
                            hidden_sizes: Sequence[int], observation_keys: Sequence[str],
                            layer_norm: bool, min_scale: float, params: Optional[Any] = None,
                            trainable: bool = True) -> base.Prior:
  """π0_H(z | x_D), a Gaussian over the latent z seeing only `observation_keys` (x_D).

  Its KL to π_H is the closed-form Gaussian KL (`base.closed_form_gaussian_kl`); the network is the
  learned prior's (`learned.make_learned_prior`) with the latent in place of the action, and z is
  not squashed.

  Args:
    observation_spec: the environment's observation specs by key (anything with `.shape`).
    latent_size: the dimension of z.
    hidden_sizes, layer_norm, min_scale: π0_H's torso and Gaussian head.
    observation_keys: x_D; each must be in `observation_spec`.
    params: π0_H's parameters when transferred from another run; None to let the learner draw
      fresh ones with `init`.
    trainable: whether the learner distils π_H into π0_H (False: π0_H is frozen).

  Returns:
    A `Prior` named "hierarchical".
  """
  prior = learned.make_learned_prior(observation_spec, action_size=latent_size,
                                     hidden_sizes=hidden_sizes, observation_keys=observation_keys,
                                     layer_norm=layer_norm, min_scale=min_scale)
  if params is None:
    if not trainable:
      raise ValueError("a frozen hierarchical prior needs its params (from a previous run)")
    return dataclasses.replace(prior, name="hierarchical")
  return dataclasses.replace(prior, name="hierarchical", params=params, init=None,
                             trainable=trainable)


class TransferredPieces(NamedTuple):
  """What a hierarchical run hands to the next one: π_L's and π0_H's parameters."""

  low_level_params: Any
  prior_params: Any


def load_transferred_pieces(run_dir: str, architecture: Mapping[str, Any]) -> TransferredPieces:
  """π_L and π0_H from the latest checkpoint of the hierarchical `kl_svg0` run in `run_dir`.

  Args:
    run_dir: the earlier run's directory (config field `prior_from`).
    architecture: this run's values of `TRANSFERRED_ARCHITECTURE_FIELDS`; the earlier run's must
      be equal, so its parameters fit this run's networks.

  Raises:
    checkpointing.CheckpointError: naming `prior_from`, when the run cannot be read, is not a
      hierarchical run, or was trained with another architecture (the differing fields and both
      values are listed).
  """
  run_config, data = checkpointing.load_run(run_dir, field="prior_from", agent="kl_svg0")
  saved = run_config.get("agent_config", {})
  if saved.get("prior") != "hierarchical":
    raise checkpointing.CheckpointError(
        f"prior_from={run_dir!r} was trained with prior={saved.get('prior')!r}; expected a "
        f"prior='hierarchical' run")
  normalise = lambda value: json.loads(json.dumps(value))  # Tuples as lists, as in config.json.
  differing = [f"{name}: saved {saved.get(name)!r}, now {normalise(architecture[name])!r}"
               for name in TRANSFERRED_ARCHITECTURE_FIELDS
               if saved.get(name) != normalise(architecture[name])]
  if differing:
    raise checkpointing.CheckpointError(
        f"prior_from={run_dir!r} has another architecture ({'; '.join(differing)}); set these "
        f"fields to the saved values")
  state = data["learner_state"]
  return TransferredPieces(low_level_params=state["policy_params"]["low"],
                           prior_params=state["prior_params"])
