"""Configuration of neural probabilistic motor primitives (NPMP).

Merel, Hasenclever, Galashov et al. 2019, "Neural probabilistic motor primitives for humanoid
control" (https://arxiv.org/abs/1811.11711). The field defaults are the sizes of the public
re-implementation MoCapAct (Wagener et al. 2022, https://arxiv.org/abs/2208.07363) for the CMU
humanoid: latent 60, α = 0.95, K = 5 future reference frames, encoder 2×1024, decoder 3×1024,
β = 0.1. `NPMPConfig.for_body` scales the networks down for the small dm_control bodies (walker,
cheetah), whose 6 actuators and ~24 proprioceptive features need far less capacity.
"""

import dataclasses
from typing import Tuple

# Scaled-down sizes for bodies with few actuators (planar walker and cheetah: 6 actions, 17–24
# proprioceptive features): a quarter of MoCapAct's widths and a latent space of 16, which trains
# in minutes on a CPU; α, β and K keep MoCapAct's values.
SMALL_BODIES = ("walker", "cheetah")
SMALL_BODY_SIZES = {"latent_size": 16, "encoder_hidden_sizes": (256, 256),
                    "decoder_hidden_sizes": (256, 256, 256)}


@dataclasses.dataclass
class NPMPConfig:
  """Hyper-parameters of NPMP distillation; every field can be set with `--set name=value`."""

  # Latent space and its AR(1) prior p(z_t | z_{t−1}) = N(α z_{t−1}, (1 − α²) σ² I), whose
  # stationary marginal is N(0, σ² I) (the first step of a window is regularised towards it).
  latent_size: int = 60
  alpha: float = 0.95
  sigma: float = 1.0
  # Weight β of KL(q(z_t | z_{t−1}, s^ref_{t+1:t+K}) ‖ p(z_t | z_{t−1})) in the per-step loss.
  beta: float = 0.1
  # K: future reference frames the encoder sees, each minus the current proprioceptive state.
  num_future_frames: int = 5

  # Networks (LayerNorm-tanh first layer, then ELU; `priorax.networks.torsos.LayerNormMLP`).
  encoder_hidden_sizes: Tuple[int, ...] = (1024, 1024)
  decoder_hidden_sizes: Tuple[int, ...] = (1024, 1024, 1024)
  layer_norm: bool = True
  min_scale: float = 1e-3  # Floor on the std of the encoder's and decoder's Gaussians.

  # Data: windows of sequence_length + num_future_frames steps of the reference episodes (the
  # loss covers the first sequence_length; the rest are only future reference frames), one window
  # starting every `sequence_period` steps.
  sequence_length: int = 10
  sequence_period: int = 1
  batch_size: int = 64
  learning_rate: float = 1e-4
  # Reference actions lie in [−1, 1] (tanh of the experts' pre-squash means); they are mapped
  # back through atanh after clipping to ±(1 − action_clip) so a saturated action stays finite.
  action_clip: float = 1e-3

  # Linear-feedback policy cloning (LFPC, Merel et al. 2019 §3.2): each reference state s also
  # trains the decoder, with the same latent z_t, at `lfpc_perturbations` states s + δ,
  # δ ~ N(0, (lfpc_scale · std)²) per proprioceptive dimension (std over the skill's data),
  # labelled μ_E(s) + J_E(s) δ by the skill's expert; their loss weighs `lfpc_weight` in total.
  lfpc: bool = False
  lfpc_perturbations: int = 4
  lfpc_scale: float = 0.1
  lfpc_weight: float = 1.0

  def __post_init__(self):
    for name in ("latent_size", "num_future_frames", "sequence_length", "sequence_period",
                 "batch_size", "lfpc_perturbations"):
      if getattr(self, name) < 1:
        raise ValueError(f"{name}={getattr(self, name)} must be >= 1")
    if not 0.0 <= self.alpha < 1.0:
      raise ValueError(f"alpha={self.alpha} must lie in [0, 1) (the AR(1) prior's coefficient)")
    for name in ("sigma", "learning_rate", "min_scale", "lfpc_scale"):
      if not getattr(self, name) > 0:
        raise ValueError(f"{name}={getattr(self, name)} must be > 0")
    for name in ("beta", "lfpc_weight"):
      if getattr(self, name) < 0:
        raise ValueError(f"{name}={getattr(self, name)} must be >= 0")
    if not 0.0 < self.action_clip < 1.0:
      raise ValueError(f"action_clip={self.action_clip} must lie in (0, 1)")
    if not self.encoder_hidden_sizes or not self.decoder_hidden_sizes:
      raise ValueError("encoder_hidden_sizes and decoder_hidden_sizes must be non-empty")
    if self.sequence_period > self.sequence_length:
      raise ValueError(f"sequence_period={self.sequence_period} exceeds sequence_length="
                       f"{self.sequence_length}: some steps would never be trained on")

  @property
  def window_length(self) -> int:
    """Steps per replayed window: T loss steps plus K future reference frames."""
    return self.sequence_length + self.num_future_frames

  @classmethod
  def for_body(cls, body: str, **fields) -> "NPMPConfig":
    """MoCapAct's sizes, scaled down (`SMALL_BODY_SIZES`) for a body of `SMALL_BODIES`."""
    base = dict(SMALL_BODY_SIZES) if body in SMALL_BODIES else {}
    return cls(**{**base, **fields})
