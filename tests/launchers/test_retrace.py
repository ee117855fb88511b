"""`kl_svg0 --set learner=retrace` end to end: the local launcher, the real Reverb server with the
sequence table, a real dm_control environment, then a resume of the same run."""

import csv
import json

import numpy as np
import pytest

from priorax.launchers import cli
from tests.launchers.conftest import TINY

ENV = "dmc:cartpole-swingup"
# 125 decisions per episode; with 4 transitions per sequence (period 4), the final step x_125 is
# in no full sequence, so every episode ends with a zero-padded one (masked in the losses).
RETRACE = ["--action-repeat", "8", "--set", "learner=retrace", "--set", "sequence_length=4",
           "--set", "sequence_period=4", "--set", "num_action_samples=2",
           "--set", "updates_per_step=0.25", "--set", "target_update_period=10"]


def _train(run_dir, steps):
  return cli.main(["train", "--env", ENV, "--steps", str(steps), "--run-dir", str(run_dir),
                   "--eval-every", "100000", "--eval-episodes", "1", "--log-every-s", "0.2",
                   *TINY, *RETRACE])


@pytest.fixture(scope="module")
def retrace_run(tmp_path_factory):
  run_dir = tmp_path_factory.mktemp("retrace")
  assert _train(run_dir, 700) == 0
  return run_dir


def test_retrace_run_learns_from_sequences_with_behaviour_log_probs(retrace_run):
  summary = json.loads((retrace_run / "summary.json").read_text())
  assert summary["actor_steps"] == 700 and summary["learner_steps"] > 0
  assert np.isfinite(summary["final_eval_return"])
  with open(retrace_run / "logs" / "learner.csv") as f:
    rows = list(csv.DictReader(f))
  assert rows, "the learner logged nothing"
  for key in ("critic_loss", "policy_loss", "alpha", "rho_mean", "kl_mean", "valid_fraction"):
    assert np.all(np.isfinite([float(r[key]) for r in rows])), key
  # ρ = π'(a|x)/μ(a|x) from the stored behaviour log-probs: positive, and 1 before the policy moves.
  rhos = [float(r["rho_mean"]) for r in rows]
  assert all(rho > 0.0 for rho in rhos), rhos
  assert all(0.0 < float(r["valid_fraction"]) <= 1.0 for r in rows)
  config = json.loads((retrace_run / "config.json").read_text())["agent_config"]
  assert config["learner"] == "retrace" and config["sequence_length"] == 4


def test_retrace_run_resumes_with_its_sequence_replay(retrace_run, capsys):
  before = json.loads((retrace_run / "summary.json").read_text())
  # 400 more steps = 100 sequences: more than the rate limiter's error buffer lets the actor
  # insert without the learner sampling (2 · 1024 / 32 = 64 items), so the learner must step.
  assert _train(retrace_run, 1100) == 0
  out = capsys.readouterr().out
  assert "resumed from" in out and "at 700 steps" in out
  replay_items = int(out.split("replay holds ")[1].split(" items")[0].replace(",", ""))
  # One sequence per 4 steps plus one padded sequence per episode (5 episodes started).
  assert 700 // 4 <= replay_items <= 700 // 4 + 6, replay_items
  after = json.loads((retrace_run / "summary.json").read_text())
  assert after["actor_steps"] == 1100
  assert after["learner_steps"] > before["learner_steps"]
