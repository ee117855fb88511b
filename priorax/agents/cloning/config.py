"""Configuration of expert distillation (`priorax distill`): BC, DAgger, APC, Naive ABC, LFPC."""

import dataclasses
from typing import Optional, Tuple

METHODS = ("bc", "dagger", "apc", "naive_abc", "lfpc")
# Methods whose items hold M synthetic states beside each real one.
AUGMENTED_METHODS = ("apc", "naive_abc", "lfpc")
LOSSES = ("log_likelihood", "cross_entropy")


@dataclasses.dataclass
class CloningConfig:
  """Hyper-parameters of a distillation run; every field can be set with `--set name=value`.

  The student's network fields carry the names of `kl_svg0`'s policy fields, so a student's run
  directory loads wherever a `kl_svg0` policy does (`agents.saved_policy`), e.g. as a fixed prior.
  """

  # Where the student's data comes from (README.md): "bc" (expert rollouts), "dagger" (student
  # rollouts labelled by the expert, aggregated), "apc" (expert queried at perturbed states),
  # "naive_abc" (perturbed states with the original label), "lfpc" (labels from the expert's
  # first-order expansion μ_E(s) + J_E(s)·δ).
  method: str = "bc"

  # Student: a tanh-Gaussian policy (256-256-256 as in Galashov et al. 2022; smaller ones compress).
  policy_hidden_sizes: Tuple[int, ...] = (256, 256, 256)
  policy_observation_keys: Optional[Tuple[str, ...]] = None  # None: every key the env gives.
  layer_norm: bool = True
  min_scale: float = 1e-3

  # Loss: "log_likelihood" of the expert's mean action, −log π(μ_E(s)|s) (BC's loss for Gaussian
  # experts), or "cross_entropy" H[π_E(.|s) ‖ π(.|s)] (closed form; also matches the expert's std).
  loss: str = "log_likelihood"

  # Data collection: the expert acts with its mean action plus N(0, expert_noise²) noise.
  expert_noise: float = 0.2
  # Augmentation (apc, naive_abc, lfpc): M synthetic states per real state, δ ~ N(0, σ² I) on the
  # observation normalised by the collected data's per-dimension std (σ = perturbation_scale), or,
  # with `perturb_physics`, on the physics state (normalised likewise) with the observation
  # recomputed by the simulator.
  num_perturbations: int = 10
  perturbation_scale: float = 0.1
  perturb_physics: bool = False
  # DAgger: the first `dagger_expert_rollouts` rollouts are the expert's; each later rollout is one
  # round, acted by the mixture β·π_E + (1 − β)·π (β per step), then trained on all data so far.
  dagger_expert_rollouts: int = 1
  dagger_beta: float = 0.0

  # Optimisation.
  batch_size: int = 256
  learning_rate: float = 1e-3
  num_updates: int = 5_000  # Learner steps of the whole run (DAgger: spread over its rounds).
  max_replay_size: int = 2_000_000  # Items (one real state and its synthetic ones each).

  def __post_init__(self):
    if self.method not in METHODS:
      raise ValueError(f"method={self.method!r} is unknown; expected one of {list(METHODS)}")
    if self.loss not in LOSSES:
      raise ValueError(f"loss={self.loss!r} is unknown; expected one of {list(LOSSES)}")
    if not self.policy_hidden_sizes:
      raise ValueError("policy_hidden_sizes must be non-empty")
    if self.policy_observation_keys is not None and not self.policy_observation_keys:
      raise ValueError("policy_observation_keys must name at least one key (or be None: all)")
    for name in ("num_perturbations", "dagger_expert_rollouts", "batch_size", "num_updates",
                 "max_replay_size"):
      if getattr(self, name) < 1:
        raise ValueError(f"{name}={getattr(self, name)} must be >= 1")
    for name in ("perturbation_scale", "learning_rate", "min_scale"):
      if not getattr(self, name) > 0:
        raise ValueError(f"{name}={getattr(self, name)} must be > 0")
    if self.expert_noise < 0:
      raise ValueError(f"expert_noise={self.expert_noise} must be >= 0")
    if not 0.0 <= self.dagger_beta <= 1.0:
      raise ValueError(f"dagger_beta={self.dagger_beta} must lie in [0, 1]")

  @property
  def group_size(self) -> int:
    """G, states per replay item: the real state and its M synthetic ones (1 without them)."""
    return 1 + self.num_perturbations if self.method in AUGMENTED_METHODS else 1
