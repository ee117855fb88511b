"""`task_inference` end to end: every variant through the local launcher, the real Reverb server
with the recurrent sequence table and a real `meta:point_goal` environment; then a resume."""

import csv
import json

import numpy as np
import pytest

from priorax.agents.task_inference import belief_report
from priorax.agents.task_inference import config as config_lib
from priorax.launchers import cli

ENV = "meta:point_goal"  # 120 decisions per episode.
# Batches of 8 sequences at 1 update per step: 32 samples per inserted sequence (4 steps), so
# Reverb's error buffer (1024 samples) lets the actor run only 32 sequences = 128 steps ahead of a
# learner still compiling, and in 240 steps the learner must step.
TINY = ["--set", "core_hidden_sizes=8", "--set", "lstm_size=8", "--set", "policy_hidden_sizes=8",
        "--set", "critic_hidden_sizes=8", "--set", "batch_size=8", "--set", "min_replay_size=40",
        "--set", "sequence_length=4", "--set", "sequence_period=4", "--set", "burn_in=2",
        "--set", "num_action_samples=2", "--set", "updates_per_step=1",
        "--set", "target_update_period=5"]


def _train(run_dir, variant, steps):
  return cli.main(["train", "--agent", "task_inference", "--env", ENV, "--steps", str(steps),
                   "--run-dir", str(run_dir), "--eval-every", "100000", "--eval-episodes", "1",
                   "--log-every-s", "0.1", "--set", f"variant={variant}", *TINY])


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
  runs = {}
  for variant in config_lib.VARIANTS:
    runs[variant] = tmp_path_factory.mktemp(variant)
    assert _train(runs[variant], variant, 240) == 0
  return runs


@pytest.mark.parametrize("variant", config_lib.VARIANTS)
def test_every_variant_trains_from_replayed_sequences(runs, variant):
  run_dir = runs[variant]
  summary = json.loads((run_dir / "summary.json").read_text())
  assert summary["actor_steps"] == 240 and summary["learner_steps"] > 0
  assert np.isfinite(summary["final_eval_return"])
  with open(run_dir / "logs" / "learner.csv") as f:
    rows = list(csv.DictReader(f))
  assert rows, "the learner logged nothing"
  keys = ["critic_loss", "policy_loss", "rho_mean", "kl_mean"]
  if variant != "rl2":
    keys += ["belief_loss", "belief_error"]
  else:
    assert "belief_loss" not in rows[0]
  for key in keys:
    assert np.all(np.isfinite([float(r[key]) for r in rows])), key
  # The belief's error against the step within an episode, for the variants with a belief.
  assert (run_dir / belief_report.PLOT_FILE).exists() == (variant != "rl2")
  config = json.loads((run_dir / "config.json").read_text())
  assert config["agent"] == "task_inference" and config["agent_config"]["variant"] == variant


def test_a_run_resumes_with_its_recurrent_replay(runs, capsys):
  run_dir = runs["task_inference"]
  before = json.loads((run_dir / "summary.json").read_text())
  assert _train(run_dir, "task_inference", 480) == 0
  out = capsys.readouterr().out
  assert "resumed from" in out and "at 240 steps" in out
  after = json.loads((run_dir / "summary.json").read_text())
  assert after["actor_steps"] == 480 and after["learner_steps"] > before["learner_steps"]
