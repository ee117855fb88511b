"""Configuration of the KL-regularised SVG(0) agent."""

import dataclasses
from typing import Optional, Tuple

PRIOR_KINDS = ("uniform", "fixed", "learned", "hierarchical")
LEARNER_KINDS = ("transition", "retrace")


@dataclasses.dataclass
class KLSVG0Config:
  """Hyper-parameters of `kl_svg0`; the defaults train `dmc:cartpole-swingup` in 100k steps.

  Every field can be set from the command line with `--set name=value`.
  """

  # Loss.
  discount: float = 0.99
  # The learner (METHODS §1). "transition": n-step transitions, twin critics with Polyak targets
  # (SAC-like, fast). "retrace": SVG(0) + Retrace on replayed sequences with hard-copied target
  # networks (the KL-regularised papers' and Acme's `svg0_prior` learner, `sequence_learning`).
  learner: str = "transition"
  n_step: int = 1  # Transition learner only.
  # Retrace learner only: transitions per replayed sequence (each stores sequence_length + 1
  # steps), steps between the starts of consecutive sequences (= sequence_length: every
  # transition is in exactly one sequence), K action samples for V(x) and the policy loss,
  # updates between hard copies of the target networks, Retrace's λ, and the entropy bonus β_H.
  # Acme's `svg0_prior` values, except β_H = 0 (Acme: 1e-3): α·KL to the uniform prior already is
  # an entropy bonus. The fields both learners share keep the transition learner's defaults; Acme's
  # are `policy_hidden_sizes=200,100 critic_hidden_sizes=400,300 layer_norm=true min_scale=0.1
  # policy_learning_rate=1e-4 critic_learning_rate=1e-4 tune_alpha=false init_alpha=1e-3`.
  sequence_length: int = 10
  sequence_period: int = 10
  num_action_samples: int = 10
  target_update_period: int = 100
  retrace_lambda: float = 1.0
  entropy_cost: float = 0.0
  # Regulariser α·KL(π(.|s) ‖ π0(.|s)). `prior`: "uniform" (π0 uniform on [-1, 1]^d, so the KL is
  # −entropy + const: SAC), "fixed" (a policy loaded from `prior_run_dir`'s latest checkpoint) or
  # "learned" (π0(a|x_D) distilled from the policy in the same update, seeing only the keys
  # `prior_observation_keys`: information asymmetry, Galashov et al. 2019) or "hierarchical" (a
  # latent-variable policy and prior sharing their low level, see the hierarchical fields below).
  prior: str = "uniform"
  prior_run_dir: Optional[str] = None
  # The learned prior (or the hierarchical prior's high level π0_H): the observation keys x_D it
  # sees (required), its torso, its Adam step size. It shares `layer_norm` and `min_scale` with the
  # policy. Under a learned prior only `min_scale` holds up the policy's entropy (π0 follows π, so
  # the KL stays small as both narrow): use 0.1, Acme's value; at 1e-3 the policy collapsed on
  # `family:reacher_targets` (figures in the README, "Pre-training that solves the family").
  prior_observation_keys: Optional[Tuple[str, ...]] = None
  prior_hidden_sizes: Tuple[int, ...] = (256, 256)
  prior_learning_rate: float = 3e-4
  # Transfer (Galashov et al. 2019, §4): `prior_from` is a run directory whose trained learned
  # prior initialises this run's π0 (with the saved run's architecture; its keys must equal
  # `prior_observation_keys`); `freeze_prior` keeps π0 as loaded (the learner never updates it).
  # For prior="hierarchical", see the hierarchical fields below.
  prior_from: Optional[str] = None
  freeze_prior: bool = False
  # α is tuned by gradient descent on log α towards `target_entropy` (uniform prior; None → −d)
  # or `target_kl` (other priors), unless `tune_alpha` is False.
  init_alpha: float = 1.0
  tune_alpha: bool = True
  target_entropy: Optional[float] = None
  target_kl: float = 1.0

  # Hierarchical latent prior (prior="hierarchical"; Tirumala et al. 2019, 2022, see
  # `agents/kl_svg0/hierarchical.py`): π(a|x) = ∫ π_H(z|x) π_L(a|z, x_L) dz and
  # π0(a|x_D) = ∫ π0_H(z|x_D) π_L(a|z, x_L) dz share the low level π_L; the regulariser is the
  # high-level KL(π_H ‖ π0_H). π_H uses the policy's torso and keys, π0_H the prior's; π_L sees
  # only `low_level_observation_keys` (x_L, required) and the Gaussian latent z of `latent_size`.
  latent_size: int = 16
  low_level_observation_keys: Optional[Tuple[str, ...]] = None
  low_level_hidden_sizes: Tuple[int, ...] = (256, 256)
  # Transfer: with `prior_from` (above) naming a hierarchical run, π_L and π0_H start from its
  # latest checkpoint and a new π_H is learned; `freeze_prior` freezes π0_H, `freeze_low_level`
  # π_L (frozen parts receive no update).
  freeze_low_level: bool = False

  # Networks.
  policy_hidden_sizes: Tuple[int, ...] = (256, 256)
  critic_hidden_sizes: Tuple[int, ...] = (256, 256)
  layer_norm: bool = False
  min_scale: float = 1e-3
  # Observation keys the policy sees (None: all of them); the critic sees everything.
  policy_observation_keys: Optional[Tuple[str, ...]] = None

  # Optimisation.
  batch_size: int = 256
  policy_learning_rate: float = 3e-4
  critic_learning_rate: float = 3e-4
  alpha_learning_rate: float = 3e-4
  target_update_rate: float = 0.005  # Polyak τ of the target critics (transition learner).
  # Updates per learner dispatch (one `lax.scan` over this many batches): 1 on CPU; on a GPU the
  # per-dispatch host cost caps small updates near 1,000/s, and 8 or more lifts that cap
  # (benchmarks/learner_accelerator.py).
  num_sgd_steps_per_step: int = 1
  # Wrap the critic's optimiser in the soft parameter reset (priorax.stream.soft_reset): an OU
  # drift towards the initialisation, estimated online, for non-stationary targets.
  critic_soft_reset: bool = False

  # Replay and the acting/learning ratio. Sizes count environment steps; the Retrace learner's
  # table holds sequences, one per `sequence_period` steps, so its limits are these divided by it.
  min_replay_size: int = 1000
  max_replay_size: int = 1_000_000
  # Gradient updates per environment step; with the batch size this sets Reverb's
  # samples-per-insert ratio (`samples_per_insert`). A Retrace batch holds batch_size sequences
  # of sequence_length transitions: updates_per_step ≈ 1 / sequence_length replays each
  # transition as often as the transition learner does at 1.
  updates_per_step: float = 1.0
  # The actor pulls fresh policy parameters every this many environment steps.
  variable_update_period: int = 1

  def __post_init__(self):
    if self.learner not in LEARNER_KINDS:
      raise ValueError(f"learner={self.learner!r} is unknown; expected one of "
                       f"{list(LEARNER_KINDS)}")
    if self.prior not in PRIOR_KINDS:
      raise ValueError(f"prior={self.prior!r} is unknown; expected one of {list(PRIOR_KINDS)}")
    if self.prior == "fixed" and not self.prior_run_dir:
      raise ValueError("prior='fixed' needs prior_run_dir=<run directory of a trained policy>")
    if self.freeze_prior and not self.prior_from:
      raise ValueError("freeze_prior=True needs prior_from=<run directory of a trained learned "
                       "or hierarchical prior> (a frozen prior that was never trained regularises "
                       "towards noise)")
    if self.prior_from and self.prior not in ("learned", "hierarchical"):
      raise ValueError(f"prior_from={self.prior_from!r} is only used by prior='learned' or "
                       f"'hierarchical', not prior={self.prior!r}")
    if self.prior in ("learned", "hierarchical"):
      if not self.prior_observation_keys:
        raise ValueError(f"prior={self.prior!r} needs prior_observation_keys=<the observation keys "
                         f"the prior sees, comma-separated>; got {self.prior_observation_keys!r}")
      if len(set(self.prior_observation_keys)) != len(self.prior_observation_keys):
        raise ValueError(f"prior_observation_keys={self.prior_observation_keys!r} repeats a key")
    elif self.prior_observation_keys is not None:
      raise ValueError(f"prior_observation_keys={self.prior_observation_keys!r} is only used by "
                       f"prior='learned' or 'hierarchical', not prior={self.prior!r}")
    self._check_hierarchical()
    if not 0.0 <= self.discount <= 1.0:
      raise ValueError(f"discount={self.discount} must lie in [0, 1]")
    for name in ("n_step", "batch_size", "min_replay_size", "max_replay_size",
                 "variable_update_period", "sequence_length", "sequence_period",
                 "num_action_samples", "target_update_period", "num_sgd_steps_per_step"):
      if getattr(self, name) < 1:
        raise ValueError(f"{name}={getattr(self, name)} must be >= 1")
    if self.learner == "retrace" and self.prior == "hierarchical":
      raise ValueError("prior='hierarchical' runs on learner='transition' only: the Retrace "
                       "learner's importance weights need the policy's action density, which the "
                       "latent hierarchy has only as an integral over z")
    if self.learner == "retrace" and self.n_step != 1:
      raise ValueError(f"n_step={self.n_step} is for learner='transition'; learner='retrace' "
                       f"bootstraps over whole sequences (set sequence_length instead)")
    if self.sequence_period > self.sequence_length:
      raise ValueError(f"sequence_period={self.sequence_period} exceeds sequence_length="
                       f"{self.sequence_length}: transitions between sequences would never be "
                       f"replayed")
    if not 0.0 <= self.retrace_lambda <= 1.0:
      raise ValueError(f"retrace_lambda={self.retrace_lambda} must lie in [0, 1]")
    if self.entropy_cost < 0.0:
      raise ValueError(f"entropy_cost={self.entropy_cost} must be >= 0")
    if self.min_replay_size > self.max_replay_size:
      raise ValueError(f"min_replay_size={self.min_replay_size} exceeds "
                       f"max_replay_size={self.max_replay_size}")
    for name in ("policy_learning_rate", "critic_learning_rate", "alpha_learning_rate",
                 "prior_learning_rate", "init_alpha", "updates_per_step", "min_scale"):
      if not getattr(self, name) > 0:
        raise ValueError(f"{name}={getattr(self, name)} must be > 0")
    if not 0.0 < self.target_update_rate <= 1.0:
      raise ValueError(f"target_update_rate={self.target_update_rate} must lie in (0, 1]")
    if not self.policy_hidden_sizes or not self.critic_hidden_sizes or not self.prior_hidden_sizes:
      raise ValueError("policy_hidden_sizes, critic_hidden_sizes and prior_hidden_sizes must be "
                       "non-empty")

  def _check_hierarchical(self):
    """The hierarchical prior's fields: required with prior='hierarchical', unused otherwise."""
    if self.prior != "hierarchical":
      if self.low_level_observation_keys is not None:
        raise ValueError(f"low_level_observation_keys={self.low_level_observation_keys!r} is only "
                         f"used by prior='hierarchical', not prior={self.prior!r}")
      if self.freeze_low_level:
        raise ValueError(f"freeze_low_level=True is only used by prior='hierarchical', not "
                         f"prior={self.prior!r}")
      return
    keys = self.low_level_observation_keys
    if not keys:
      raise ValueError(f"prior='hierarchical' needs low_level_observation_keys=<the observation "
                       f"keys x_L the shared low level sees, comma-separated>; got {keys!r}")
    if len(set(keys)) != len(keys):
      raise ValueError(f"low_level_observation_keys={keys!r} repeats a key")
    if self.latent_size < 1:
      raise ValueError(f"latent_size={self.latent_size} must be >= 1")
    if not self.low_level_hidden_sizes:
      raise ValueError("low_level_hidden_sizes must be non-empty")
    if self.freeze_low_level and not self.prior_from:
      raise ValueError("freeze_low_level=True needs prior_from=<run directory of a hierarchical "
                       "kl_svg0 run>: only a transferred low level can be frozen")

  @property
  def steps_per_item(self) -> int:
    """New environment steps per replay item: 1 (a transition) or sequence_period (a sequence)."""
    return self.sequence_period if self.learner == "retrace" else 1

  @property
  def samples_per_insert(self) -> float:
    """Reverb's ratio: items sampled per item inserted, for updates_per_step updates per step."""
    return self.batch_size * self.updates_per_step * self.steps_per_item
