"""Configuration of the meta-RL-as-task-inference agent (METHODS §7)."""

import dataclasses
from typing import Optional, Tuple

# rl2: recurrent policy trained by RL alone; rl2_aux: the same plus an auxiliary task-prediction
# head on the core; task_inference: a belief network trained only by supervision, the policy
# seeing stop-gradient belief features; oracle: the policy sees the true task descriptor.
VARIANTS = ("rl2", "rl2_aux", "task_inference", "oracle")


@dataclasses.dataclass
class TaskInferenceConfig:
  """Hyper-parameters of `task_inference` (Humplik et al. 2019, https://arxiv.org/abs/1905.06424).

  Every field can be set from the command line with `--set name=value`. The learner is `kl_svg0`'s
  Retrace learner (SVG(0) actor, Retrace critic, uniform prior = SAC-like entropy regulariser) on
  replayed sequences, with a recurrent core replayed from its stored state after `burn_in` steps.
  """

  variant: str = "task_inference"
  # Weight of the auxiliary loss −log q(task | h_t) on the RL core (rl2_aux only).
  aux_cost: float = 1.0

  # Loss (as in `kl_svg0`'s Retrace learner).
  discount: float = 0.99
  sequence_length: int = 20
  sequence_period: int = 20
  # Steps that only refresh the stored core state (R2D2). The adder writes as many padding steps
  # before each episode, so that the episode's first steps are trained on too.
  burn_in: int = 10
  num_action_samples: int = 8
  target_update_period: int = 100
  retrace_lambda: float = 1.0
  entropy_cost: float = 0.0
  init_alpha: float = 1.0
  tune_alpha: bool = True
  target_entropy: Optional[float] = None  # None: −D, as in SAC.

  # Networks. The core (the RL² core or the belief network) reads (x_t, a_{t−1}, r_{t−1}) through
  # an MLP and an LSTM; every observation key but `task` reaches it. The twin critics of rl2 and
  # rl2_aux read the core's features (no `task`); those of task_inference and oracle are
  # feed-forward and privileged: they see every key, the true task included (METHODS §7).
  core_hidden_sizes: Tuple[int, ...] = (128,)
  lstm_size: int = 128
  policy_hidden_sizes: Tuple[int, ...] = (256, 256)
  critic_hidden_sizes: Tuple[int, ...] = (256, 256)
  min_scale: float = 1e-3
  belief_min_scale: float = 1e-2

  # Optimisation. A batch holds batch_size sequences.
  batch_size: int = 32
  policy_learning_rate: float = 3e-4
  critic_learning_rate: float = 3e-4
  alpha_learning_rate: float = 3e-4

  # Replay (sizes in environment steps) and the acting/learning ratio.
  min_replay_size: int = 1000
  max_replay_size: int = 1_000_000
  updates_per_step: float = 0.05
  variable_update_period: int = 1

  def __post_init__(self):
    if self.variant not in VARIANTS:
      raise ValueError(f"variant={self.variant!r} is unknown; expected one of {list(VARIANTS)}")
    if not 0.0 <= self.discount <= 1.0:
      raise ValueError(f"discount={self.discount} must lie in [0, 1]")
    for name in ("sequence_length", "sequence_period", "num_action_samples",
                 "target_update_period", "lstm_size", "batch_size", "min_replay_size",
                 "max_replay_size", "variable_update_period"):
      if getattr(self, name) < 1:
        raise ValueError(f"{name}={getattr(self, name)} must be >= 1")
    if self.burn_in < 0:
      raise ValueError(f"burn_in={self.burn_in} must be >= 0")
    if self.sequence_period > self.sequence_length:
      raise ValueError(f"sequence_period={self.sequence_period} exceeds sequence_length="
                       f"{self.sequence_length}: transitions between sequences would never be "
                       f"replayed")
    if not 0.0 <= self.retrace_lambda <= 1.0:
      raise ValueError(f"retrace_lambda={self.retrace_lambda} must lie in [0, 1]")
    for name in ("entropy_cost", "aux_cost"):
      if getattr(self, name) < 0.0:
        raise ValueError(f"{name}={getattr(self, name)} must be >= 0")
    if self.aux_cost != 1.0 and self.variant != "rl2_aux":
      raise ValueError(f"aux_cost={self.aux_cost} is only used by variant='rl2_aux', not "
                       f"variant={self.variant!r}")
    if self.min_replay_size > self.max_replay_size:
      raise ValueError(f"min_replay_size={self.min_replay_size} exceeds "
                       f"max_replay_size={self.max_replay_size}")
    for name in ("policy_learning_rate", "critic_learning_rate", "alpha_learning_rate",
                 "init_alpha", "updates_per_step", "min_scale", "belief_min_scale"):
      if not getattr(self, name) > 0:
        raise ValueError(f"{name}={getattr(self, name)} must be > 0")
    if not (self.core_hidden_sizes and self.policy_hidden_sizes and self.critic_hidden_sizes):
      raise ValueError("core_hidden_sizes, policy_hidden_sizes and critic_hidden_sizes must be "
                       "non-empty")

  @property
  def stored_length(self) -> int:
    """Steps per replayed sequence: burn-in, then sequence_length transitions (+1 bootstrap)."""
    return self.burn_in + self.sequence_length + 1

  @property
  def samples_per_insert(self) -> float:
    """Reverb's ratio: items sampled per item inserted, for updates_per_step updates per step."""
    return self.batch_size * self.updates_per_step * self.sequence_period
