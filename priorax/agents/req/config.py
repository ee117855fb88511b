"""Configuration of REQ, Relative Entropy Q-learning (Jeong et al. 2020, arXiv 2010.08587)."""

import dataclasses
from typing import Optional, Tuple

# The observation key under which an environment built with an expert carries the expert's action
# (`experts.ExpertActionWrapper`). Defined here, not in `experts`, so the learner and networks
# know it without importing the simulator.
EXPERT_ACTION_KEY = "expert_action"
# Values of `REQConfig.transfer`: what a run takes from the run named by `prior_from`.
TRANSFERS = ("none", "iwpla", "prior")


@dataclasses.dataclass
class REQConfig:
  """Hyper-parameters of `req`; the defaults are the paper's control-suite settings (METHODS §4).

  `manipulation_config()` gives the manipulation settings. Every field can be set from the command
  line with `--set name=value`.
  """

  # Policy improvement: π_i(a|s) ∝ π_prior(a|s) exp(Q(s,a)/τ_s) over `num_samples` (M) prior
  # samples, with KL(π_i ‖ π_prior) ≤ `epsilon` fixing the per-state temperature τ_s through its
  # dual, solved by `dual_steps` Newton steps per batch (losses.solve_temperature).
  num_samples: int = 20
  epsilon: float = 0.75
  dual_steps: int = 20

  # Loss.
  discount: float = 0.99
  n_step: int = 1  # "unroll 2" in the paper: one transition (x_t, a_t, r_t, x_{t+1}).

  # Prior: advantage-filtered regression with decoupled KL trust regions on its mean and its
  # covariance to the target prior, enforced by Lagrange duals (MPO-style).
  epsilon_mean: float = 0.01
  epsilon_stddev: float = 1e-5
  init_dual: float = 1.0
  dual_learning_rate: float = 1e-2
  # Weight of the expert-regression term E[1[A(ρ(s), s) ≥ 0] log π_prior(ρ(s)|s)] when the
  # observations carry the expert's action (an environment built with `--expert`).
  expert_loss_weight: float = 1.0

  # Networks: the paper's 256-256-256 ELU MLPs with LayerNorm on the first layer.
  prior_hidden_sizes: Tuple[int, ...] = (256, 256, 256)
  # The observation keys the prior reads (None: every key but the expert's action). IWPLA's
  # meta-training denies it a family's task keys (e.g. `position,velocity` on
  # `family:reacher_targets`, not `to_target`), so that it learns what the tasks share (METHODS
  # §2, §4b). The critic always reads every key.
  prior_observation_keys: Optional[Tuple[str, ...]] = None
  critic_hidden_sizes: Tuple[int, ...] = (256, 256, 256)
  layer_norm: bool = True
  min_scale: float = 1e-3

  # Optimisation.
  batch_size: int = 512
  learning_rate: float = 3e-4  # Adam, for the critic and the prior.
  target_update_period: int = 20  # Learner steps between hard copies of the target networks.

  # Intertwined expert exploration: each episode is intertwined with probability `p_intertwine`;
  # in one, every step executes the expert's action with probability `p_rho`. The first
  # `expert_episodes` episodes of an actor are pure expert rollouts, mixed into the replay.
  p_intertwine: float = 0.5
  p_rho: float = 0.5
  expert_episodes: int = 0

  # Transfer (IWPLA, Galashov et al. 2020, METHODS §4b; `transfer.py`). A run on a task family
  # (a training task per episode) meta-trains the prior and the critic; a later run on a held-out
  # task reuses them with `prior_from` = that run's directory and
  #   transfer="iwpla": the prior and the critic's torso (every layer but the last) are loaded,
  #                     the critic's head starts at zero (Q ≡ 0, so the importance weights are
  #                     uniform and the agent follows the prior from its first step);
  #   transfer="prior": the prior alone is loaded, the critic is freshly initialised (no value
  #                     transfer: the `prior_only` baseline).
  # The trust-region duals start afresh either way; τ_s is solved per state, it carries nothing.
  # `freeze_prior` keeps the loaded prior as it is (no update), `freeze_torso` the loaded torso
  # (only the head learns); otherwise both are fine-tuned.
  transfer: str = "none"
  prior_from: Optional[str] = None
  freeze_prior: bool = False
  freeze_torso: bool = False

  # Replay and the acting/learning ratio.
  min_replay_size: int = 1000
  max_replay_size: int = 1_000_000
  updates_per_step: float = 1.0
  variable_update_period: int = 1
  # Offline mode: learn only from the episodes in this directory (replay.episodes format); no
  # data is collected. The run's step budget then counts learner steps.
  offline_dataset: Optional[str] = None

  def __post_init__(self):
    for name in ("num_samples", "dual_steps", "n_step", "batch_size", "target_update_period",
                 "min_replay_size", "max_replay_size", "variable_update_period"):
      if getattr(self, name) < 1:
        raise ValueError(f"{name}={getattr(self, name)} must be >= 1")
    if self.num_samples < 2:
      raise ValueError(f"num_samples={self.num_samples} must be >= 2 (the temperature is fitted "
                       f"to the spread of Q over the prior's samples)")
    if not 0.0 <= self.discount <= 1.0:
      raise ValueError(f"discount={self.discount} must lie in [0, 1]")
    for name in ("epsilon", "epsilon_mean", "epsilon_stddev", "expert_loss_weight"):
      if getattr(self, name) < 0:
        raise ValueError(f"{name}={getattr(self, name)} must be >= 0")
    for name in ("learning_rate", "dual_learning_rate", "init_dual", "updates_per_step",
                 "min_scale"):
      if not getattr(self, name) > 0:
        raise ValueError(f"{name}={getattr(self, name)} must be > 0")
    for name in ("p_intertwine", "p_rho"):
      if not 0.0 <= getattr(self, name) <= 1.0:
        raise ValueError(f"{name}={getattr(self, name)} must lie in [0, 1]")
    if self.expert_episodes < 0:
      raise ValueError(f"expert_episodes={self.expert_episodes} must be >= 0")
    if self.min_replay_size > self.max_replay_size:
      raise ValueError(f"min_replay_size={self.min_replay_size} exceeds "
                       f"max_replay_size={self.max_replay_size}")
    if not self.prior_hidden_sizes or not self.critic_hidden_sizes:
      raise ValueError("prior_hidden_sizes and critic_hidden_sizes must be non-empty")
    if self.transfer not in TRANSFERS:
      raise ValueError(f"transfer={self.transfer!r} must be one of {list(TRANSFERS)}")
    if (self.transfer == "none") != (not self.prior_from):
      raise ValueError(f"transfer={self.transfer!r} with prior_from={self.prior_from!r}: "
                       f"transfer='iwpla' or 'prior' needs prior_from=<run directory of a req "
                       f"run>, and prior_from needs one of them")
    if self.freeze_prior and self.transfer == "none":
      raise ValueError("freeze_prior=True needs a transferred prior (transfer='iwpla' or "
                       "'prior' with prior_from)")
    if self.freeze_torso and self.transfer != "iwpla":
      raise ValueError(f"freeze_torso=True needs transfer='iwpla' (a transferred critic torso); "
                       f"got transfer={self.transfer!r}")
    if self.prior_observation_keys is not None:
      keys = self.prior_observation_keys
      if not keys or len(set(keys)) != len(keys) or EXPERT_ACTION_KEY in keys:
        raise ValueError(f"prior_observation_keys={keys!r} must name distinct observation keys, "
                         f"not {EXPERT_ACTION_KEY!r} (or be unset: every key)")
    if self.offline_dataset is not None and not self.offline_dataset:
      raise ValueError("offline_dataset='' names no directory; leave it unset for online runs")

  @property
  def samples_per_insert(self) -> float:
    return self.batch_size * self.updates_per_step


def manipulation_config(**overrides) -> REQConfig:
  """The paper's manipulation settings: Adam 1e-4, batch 128, target period 500, M = 50.

  The paper's unroll of 32 belongs to its sequence learner; this transition learner keeps n = 1.
  """
  values = dict(learning_rate=1e-4, batch_size=128, target_update_period=500, num_samples=50)
  return REQConfig(**{**values, **overrides})
