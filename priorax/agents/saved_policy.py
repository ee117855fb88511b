"""A trained tanh-Gaussian policy read back from a run directory.

Runs of `kl_svg0` (`priorax train`) and distilled students (`priorax distill`, agent "cloning")
store the same policy network (`networks.make_gaussian_policy`) under the same config fields
(`policy_hidden_sizes`, `policy_observation_keys`, `layer_norm`, `min_scale`) and the same
checkpoint entry (`learner_state["policy_params"]`). Either can therefore serve as a fixed prior
(`--set prior=fixed prior_run_dir=...`) or as the expert of a distillation.
"""

from typing import Any, Dict, NamedTuple, Optional, Tuple

import haiku as hk

from priorax.networks import policies
from priorax.utils import checkpointing

# Agents whose run directories hold a tanh-Gaussian policy in the layout above.
POLICY_AGENTS = ("kl_svg0", "cloning")


class SavedPolicy(NamedTuple):
  """The latest checkpoint's policy of a run, with the architecture it was trained with.

  Attributes:
    params: the policy network's parameters.
    network: `(init, apply)`; `apply(params, observation) -> GaussianParams` (pre-tanh, [B, D]).
    action_size: D.
    observation_keys: the keys the policy sees (None: all of them).
    run: the run's config.json (env, action_repeat, agent_config, ...).
  """

  params: Any
  network: hk.Transformed
  action_size: int
  observation_keys: Optional[Tuple[str, ...]]
  run: Dict[str, Any]


def load_saved_policy(run_dir: str, *, name: str = "run_dir") -> SavedPolicy:
  """Reads `run_dir`'s config and latest checkpoint; `name` is the option quoted in errors.

  Raises:
    checkpointing.CheckpointError: no readable config.json, an agent without a saved policy, no
      checkpoint (`checkpointing.load_run`).
  """
  run, data = checkpointing.load_run(run_dir, field=name, agent=POLICY_AGENTS)
  agent_config = run["agent_config"]
  params = data["learner_state"]["policy_params"]
  action_size = int(params["gaussian_head/mean"]["b"].shape[-1])
  keys = agent_config.get("policy_observation_keys")
  keys = tuple(keys) if keys else None
  network = policies.make_gaussian_policy(
      action_size, agent_config["policy_hidden_sizes"], observation_keys=keys,
      layer_norm=agent_config["layer_norm"], min_scale=agent_config["min_scale"])
  return SavedPolicy(params=params, network=network, action_size=action_size,
                     observation_keys=keys, run=run)
