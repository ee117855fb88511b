"""IWPLA: transfer of a behaviour prior and a value torso to a held-out task (run by hand; long).

Galashov et al. 2020, "Importance weighted policy learning and adaptation"
(https://arxiv.org/abs/2009.04875; METHODS §4b): the policy π ∝ π_prior exp(Q/τ_s) over M prior
samples (`req`) adapts to a new task of a family from a prior and a critic torso learned across
the family's training tasks, acting with the importance-weighted policy from its first step.

Protocol, per seed (every run is a `priorax train --agent req` subprocess, one at a time):
1. Meta-train `req` on the family (`--family`, the kl_svg0 transfer benchmark's; by default
   `family:reacher_targets`, a target on an arc, one of four per episode), the prior blind to the
   task key (`prior_observation_keys=position,velocity`), the critic reading everything (the task
   enters as an input).
2. On the family's held-out task (`family:reacher_targets-holdout`: a fifth target on the arc; the
   reward is sparse: 1 while the finger touches the target, else 0), learn with, as methods:
     scratch      `req` from freshly initialised networks,
     prior_only   the meta-trained prior, a fresh critic (`--set transfer=prior`),
     iwpla        the meta-trained prior and critic torso, a new zero head
                  (`--set transfer=iwpla`),
     rl2 (slot)   the task-inference issue's `rl2` on the same family: add it when it exists.
   The prior is fine-tuned unless `--freeze-prior`.
3. Record `steps_to_threshold` (environment steps of the first evaluation whose mean return over
   `--eval-episodes` episodes of the evaluation policy reaches `--threshold`; a run that never
   does is recorded at its budget, a censored value, with `reached_threshold` = 0) and the
   `eval_return` curves.

Runs live under `benchmarks/results/iwpla_transfer_work/` (git-ignored); finished runs are not
repeated and an interrupted one resumes, so re-running the command continues. The bookkeeping
(`train_run`, `collect`, `plot`, `print_ratios`) is the kl_svg0 transfer benchmark's.

    python benchmarks/iwpla_transfer.py --seeds 0 1 2
    python benchmarks/iwpla_transfer.py --pretrain-env-steps 20000 --transfer-env-steps 10000
"""

import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from benchmarks import results_io  # pylint: disable=wrong-import-position
from benchmarks import transfer_kl_svg0  # pylint: disable=wrong-import-position

NAME = "iwpla_transfer"
WORK_DIR = os.path.join(results_io.RESULTS_DIR, f"{NAME}_work")
# Transfer methods: name -> flags given the seed's meta-training run directory.
METHODS = {
    "scratch": lambda source: [],
    "prior_only": lambda source: ["--prior-from", source, "--set", "transfer=prior"],
    "iwpla": lambda source: ["--prior-from", source, "--set", "transfer=iwpla"],
}
# Every run's networks and batch (smaller than the paper's 256×3 and 512, for a 2-core machine);
# `--set` appends overrides after these.
SETTINGS = ["--set", "prior_hidden_sizes=128,128", "--set", "critic_hidden_sizes=128,128",
            "--set", "batch_size=128"]


def run_seed(seed: int, args) -> None:
  family = transfer_kl_svg0.FAMILIES[args.family]
  source = os.path.join(args.work_dir, f"pretrain_seed{seed}")
  pretrain_flags = ["--set", f"prior_observation_keys={family.body_keys}"]
  transfer_kl_svg0.train_run(source, family.env, seed, args.pretrain_env_steps,
                             SETTINGS + pretrain_flags + args.extra, args.eval_every,
                             args.eval_episodes, agent="req")
  freeze = ["--freeze-prior"] if args.freeze_prior else []
  for method in args.methods:
    flags = METHODS[method](source) + (freeze if method != "scratch" else [])
    transfer_kl_svg0.train_run(os.path.join(args.work_dir, f"{method}_seed{seed}"),
                               family.holdout, seed, args.transfer_env_steps,
                               SETTINGS + flags + args.extra, args.eval_every,
                               args.eval_episodes, agent="req")


def main():
  parser = transfer_kl_svg0.make_parser(
      __doc__.split("\n")[0], METHODS, transfer_env_steps=40_000, eval_every=2_000,
      work_dir=WORK_DIR, set_help="req config override for every run (e.g. num_samples=20)")
  parser.add_argument("--freeze-prior", action="store_true",
                      help="keep the transferred prior fixed on the held-out task")
  transfer_kl_svg0.run_and_report(NAME, parser.parse_args(), run_seed, METHODS)


if __name__ == "__main__":
  main()
