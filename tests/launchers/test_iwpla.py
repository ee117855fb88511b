"""IWPLA end to end through the embedded Reverb server: `priorax train --agent req` meta-trains
on a task family (the prior blind to the task key), then adapts on the held-out task with
`--prior-from --set transfer=iwpla`, starting from the family's prior and critic torso."""

import csv
import json

import jax
import numpy as np

from priorax.agents.req import transfer
from priorax.launchers import cli
from priorax.utils import checkpointing

FAMILY = "family:reacher_targets"
HOLDOUT = "family:reacher_targets-holdout"
PRIOR_KEYS = "position,velocity"  # Not `to_target`: the family's task key.
TINY = ["--set", "prior_hidden_sizes=16,16", "--set", "batch_size=32", "--set", "min_replay_size=64", "--set", "num_samples=8",
        "--set", "dual_steps=10"]


def _train(run_dir, env, steps, *extra):
  return cli.main(["train", "--agent", "req", "--env", env, "--action-repeat", "10",
                   "--steps", str(steps), "--run-dir", str(run_dir), "--eval-every", "100000",
                   "--eval-episodes", "1", "--log-every-s", "0.01", *TINY, *extra])


def _policy_params(run_dir):
  return checkpointing.Checkpointer(str(run_dir / "checkpoints")).load_latest()[
      "learner_state"]["policy_params"]


def test_meta_train_then_adapt_on_holdout(tmp_path, capsys):
  family = tmp_path / "family"
  assert _train(family, FAMILY, 200, "--set", f"prior_observation_keys={PRIOR_KEYS}",
                "--set", "critic_hidden_sizes=16,16") == 0
  adapted = tmp_path / "holdout"
  assert _train(adapted, HOLDOUT, 120, "--prior-from", str(family), "--set", "transfer=iwpla",
                "--freeze-prior", "--set", "freeze_torso=true") == 0
  config = json.loads((adapted / "config.json").read_text())["agent_config"]
  # The prior's keys and the critic torso's sizes came from the family run through --prior-from.
  assert config["prior_observation_keys"] == PRIOR_KEYS.split(",")
  assert config["critic_hidden_sizes"] == [16, 16]
  assert config["transfer"] == "iwpla" and config["prior_from"] == str(family)
  assert config["freeze_prior"] is True and config["freeze_torso"] is True
  summary = json.loads((adapted / "summary.json").read_text())
  assert summary["actor_steps"] == 120 and summary["learner_steps"] > 0
  with open(adapted / "logs" / "learner.csv", newline="") as f:
    rows = list(csv.DictReader(f))
  assert rows and all(np.isfinite(float(r["critic_loss"])) for r in rows)
  # Frozen prior and torso: exactly the family run's after the adaptation's updates. (That the
  # zero head learns is tests/agents/req/test_transfer.py's: with no reward in these 120 sparse
  # steps its TD errors, hence its gradients, are exactly zero.)
  source, now = _policy_params(family), _policy_params(adapted)
  jax.tree_util.tree_map(np.testing.assert_array_equal, now[0], source[0])
  torso, _ = transfer.split_critic(now[1])
  jax.tree_util.tree_map(np.testing.assert_array_equal, torso,
                         transfer.split_critic(source[1])[0])
  capsys.readouterr()
  assert cli.main(["evaluate", "--run-dir", str(adapted), "--episodes", "1"]) == 0
  assert "evaluation return" in capsys.readouterr().out


def test_transfer_without_source_is_one_line_error(tmp_path, capsys):
  code = _train(tmp_path / "a", HOLDOUT, 10, "--set", "transfer=iwpla")
  assert code == 2 and "needs prior_from" in capsys.readouterr().err
  code = _train(tmp_path / "b", HOLDOUT, 10, "--prior-from", str(tmp_path / "none"),
                "--set", "transfer=iwpla")
  assert code == 2 and "--prior-from" in capsys.readouterr().err
