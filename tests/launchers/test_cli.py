"""The `priorax` command line end to end: a tiny run through the real Reverb server and a real
dm_control environment, its run directory, resume, evaluation, and every bad input."""

import csv
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from priorax.launchers import cli
from tests.launchers.conftest import TINY

ENV = "dmc:cartpole-swingup"


def _train(run_dir, steps, *extra):
  return cli.main(["train", "--env", ENV, "--steps", str(steps), "--run-dir", str(run_dir),
                   "--eval-every", "400", "--eval-episodes", "1", "--log-every-s", "0.5",
                   *TINY, *extra])


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
  run_dir = tmp_path_factory.mktemp("run")
  assert _train(run_dir, 1100) == 0
  return run_dir


def test_run_directory_holds_config_logs_checkpoint_curve_and_summary(trained_run):
  for name in ("config.json", "curve.png", "summary.json", "logs/actor.csv", "logs/learner.csv",
               "logs/evaluator.csv"):
    assert os.path.getsize(trained_run / name) > 0, name
  assert os.listdir(trained_run / "checkpoints")
  assert os.listdir(trained_run / "tensorboard" / "learner")
  assert os.listdir(trained_run / "replay")
  summary = json.loads((trained_run / "summary.json").read_text())
  assert summary["actor_steps"] == 1100
  assert summary["learner_steps"] > 0
  with open(trained_run / "logs" / "learner.csv") as f:
    rows = list(csv.DictReader(f))
  assert rows, "the learner logged nothing"
  for key in ("critic_loss", "policy_loss", "alpha", "learner_steps", "actor_steps"):
    assert np.all(np.isfinite([float(r[key]) for r in rows])), key
  config = json.loads((trained_run / "config.json").read_text())
  assert config["agent_config"]["batch_size"] == 32


def test_resume_continues_counters_and_replay(trained_run, capsys):
  before = json.loads((trained_run / "summary.json").read_text())
  assert _train(trained_run, 1400) == 0
  out = capsys.readouterr().out
  assert "resumed from" in out and "at 1,100 steps" in out
  replay_items = int(out.split("replay holds ")[1].split(" items")[0].replace(",", ""))
  assert replay_items >= 1090  # What the first run inserted (n-step items, one per step).
  after = json.loads((trained_run / "summary.json").read_text())
  assert after["actor_steps"] == 1400
  assert after["learner_steps"] > before["learner_steps"]


def test_resume_with_different_settings_is_refused(trained_run, capsys):
  code = _train(trained_run, 2000, "--set", "batch_size=64")
  assert code == cli.EXIT_BAD_INPUT
  assert "different experiment" in capsys.readouterr().err


def test_evaluate_prints_the_return(trained_run, capsys):
  assert cli.main(["evaluate", "--run-dir", str(trained_run), "--episodes", "1"]) == 0
  assert "evaluation return:" in capsys.readouterr().out


@pytest.mark.parametrize("argv, message", [
    (["train", "--agent", "sac9", "--run-dir", "{d}"], "unknown agent 'sac9'"),
    (["train", "--env", "dmc:cartpole-swingupp", "--run-dir", "{d}"], "dmc:cartpole-swingup"),
    (["train", "--env", "nope", "--run-dir", "{d}"], "nope"),
    (["train", "--set", "batchsize=3", "--run-dir", "{d}"], "unknown config field 'batchsize'"),
    (["train", "--set", "batch_size=big", "--run-dir", "{d}"], "batch_size='big' is not an int"),
    (["train", "--set", "discount=1.5", "--run-dir", "{d}"], "discount=1.5"),
    (["train", "--set", "layer_norm=maybe", "--run-dir", "{d}"], "not a bool"),
    (["evaluate", "--run-dir", "{d}/missing"], "cannot read"),
])
def test_bad_input_is_one_line_with_exit_code_2(argv, message, tmp_path, capsys):
  code = cli.main([a.replace("{d}", str(tmp_path)) for a in argv])
  err = capsys.readouterr().err
  assert code == cli.EXIT_BAD_INPUT
  assert message in err
  assert len(err.strip().splitlines()) == 1, err


@pytest.mark.parametrize("argv, message", [
    (["train", "--steps", "-5", "--run-dir", "x"], "-5 is negative"),
    (["train", "--steps", "ten", "--run-dir", "x"], "'ten' is not an integer"),
    (["evaluate", "--run-dir", "x", "--episodes", "0"], "0 is not allowed"),
])
def test_bad_flags_are_one_line_with_exit_code_2(argv, message, capsys):
  with pytest.raises(SystemExit) as exit_info:
    cli.main(argv)
  err = capsys.readouterr().err
  assert exit_info.value.code == cli.EXIT_BAD_INPUT
  assert message in err and len(err.strip().splitlines()) == 1, err


def test_corrupt_checkpoint_is_reported(trained_run, tmp_path, capsys):
  import shutil
  run_dir = tmp_path / "copy"
  shutil.copytree(trained_run, run_dir)
  latest = sorted(os.listdir(run_dir / "checkpoints"))[-1]
  (run_dir / "checkpoints" / latest).write_bytes(b"not a pickle")
  code = cli.main(["evaluate", "--run-dir", str(run_dir)])
  err = capsys.readouterr().err
  assert code == cli.EXIT_BAD_INPUT
  assert "unreadable or corrupt" in err and latest in err


def test_nan_loss_stops_with_the_step_and_keeps_the_last_good_checkpoint(tmp_path, capsys):
  run_dir = tmp_path / "nan"
  code = cli.main(["train", "--env", "test:nan-3000", "--steps", "6000", "--run-dir",
                   str(run_dir), "--checkpoint-every-s", "0.01", "--eval-every", "100000",
                   *TINY])
  err = capsys.readouterr().err
  assert code == cli.EXIT_DIVERGED
  assert "non-finite loss at learner step" in err and len(err.strip().splitlines()) == 1
  step = int(err.split("learner step ")[1].split(";")[0])
  assert step > 0
  from priorax.utils import checkpointing
  saved = checkpointing.Checkpointer(str(run_dir / "checkpoints")).load_latest()
  assert saved is not None
  for leaf in __import__("jax").tree_util.tree_leaves(saved["learner_state"]["policy_params"]):
    assert np.all(np.isfinite(leaf))
  assert saved["counts"]["actor_steps"] <= 3000 + 1000  # Saved before the NaNs reached a loss.


def test_console_script_reports_bad_input_without_traceback(tmp_path):
  exe = os.path.join(os.path.dirname(sys.executable), "priorax")
  result = subprocess.run([exe, "train", "--env", "dmc:walkr-walk", "--run-dir", str(tmp_path)],
                          capture_output=True, text=True, timeout=120, check=False)
  assert result.returncode == cli.EXIT_BAD_INPUT
  assert "Traceback" not in result.stderr
  assert "dmc:walker-walk" in result.stderr


def test_fixed_prior_from_a_trained_run(trained_run, tmp_path):
  """π0 = the trained run's policy: the new run trains towards it and logs the KL."""
  run_dir = tmp_path / "with_prior"
  assert _train(run_dir, 300, "--set", "prior=fixed", "--set",
                f"prior_run_dir={trained_run}") == 0
  with open(run_dir / "logs" / "learner.csv") as f:
    rows = list(csv.DictReader(f))
  kls = [float(r["kl_mean"]) for r in rows]
  assert rows and np.all(np.isfinite(kls)) and np.all(np.asarray(kls) >= 0.0)


def test_fixed_prior_without_a_checkpoint_is_bad_input(tmp_path, capsys):
  code = _train(tmp_path / "run", 300, "--set", "prior=fixed", "--set",
                f"prior_run_dir={tmp_path / 'nothing'}")
  assert code == cli.EXIT_BAD_INPUT
  assert "prior_run_dir=" in capsys.readouterr().err


def test_evaluate_records_a_video(trained_run, tmp_path, capsys):
  from priorax.envs import rendering
  try:
    rendering.check_rendering()
  except rendering.RenderingUnavailableError as e:
    assert "libegl-mesa0" in str(e) and "libosmesa6" in str(e)
    pytest.skip(f"no GL backend here: {e}")
  path = tmp_path / "policy.mp4"
  assert cli.main(["evaluate", "--run-dir", str(trained_run), "--episodes", "1",
                   "--video", str(path)]) == 0
  assert path.stat().st_size > 10_000
  assert f"video: {path}" in capsys.readouterr().out


def test_stream_subcommand_is_handed_to_the_stream_cli(tmp_path, capsys):
  code = cli.main(["stream", "--learner", "bogus", "--run-dir", str(tmp_path)])
  assert code == cli.EXIT_BAD_INPUT
  assert "unknown learner" in capsys.readouterr().err


def test_learned_prior_with_information_asymmetry(tmp_path):
  """π0(a | position), denied the velocity, distilled from the policy in the same update: the run
  logs a finite KL towards it and the distillation loss, and checkpoints the prior and its Adam."""
  run_dir = tmp_path / "learned"
  assert _train(run_dir, 300, "--set", "prior=learned", "--set", "prior_observation_keys=position",
                "--set", "prior_hidden_sizes=16,16") == 0
  with open(run_dir / "logs" / "learner.csv") as f:
    rows = list(csv.DictReader(f))
  assert rows, "the learner logged nothing"
  for key in ("kl_mean", "prior_loss"):
    values = np.asarray([float(r[key]) for r in rows])
    assert np.all(np.isfinite(values)) and np.all(values >= 0.0), key
  config = json.loads((run_dir / "config.json").read_text())
  assert config["agent_config"]["prior_observation_keys"] == ["position"]
  from priorax.utils import checkpointing
  saved = checkpointing.Checkpointer(str(run_dir / "checkpoints")).load_latest()
  assert saved["learner_state"]["prior_opt_state"] != ()


def test_learned_prior_with_an_unknown_key_is_bad_input(tmp_path, capsys):
  code = _train(tmp_path / "run", 300, "--set", "prior=learned", "--set",
                "prior_observation_keys=position,target")
  err = capsys.readouterr().err
  assert code == cli.EXIT_BAD_INPUT
  assert "unknown observation key 'target'; valid keys: ['position', 'velocity']" in err
  assert len(err.strip().splitlines()) == 1, err


def test_resume_of_a_run_created_before_a_config_field_existed(trained_run, tmp_path):
  """A field added to the agent config later compares at its default: the run still resumes."""
  import shutil
  run_dir = tmp_path / "older"
  shutil.copytree(trained_run, run_dir)
  config = json.loads((run_dir / "config.json").read_text())
  del config["agent_config"]["critic_soft_reset"]
  (run_dir / "config.json").write_text(json.dumps(config))
  steps = json.loads((run_dir / "summary.json").read_text())["actor_steps"]
  assert _train(run_dir, steps + 100) == 0
