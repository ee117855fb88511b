"""Transfer of a learned default policy (Galashov et al. 2019): a tiny multi-task run on a task
family trains π0 blind to the task keys; `--prior-from` loads it into a run on the held-out task,
frozen or still trained; incompatible runs are refused with one line."""

import csv
import json
import shutil

import jax
import numpy as np
import pytest

from priorax import envs
from priorax import specs
from priorax.agents.kl_svg0 import builder as builder_lib
from priorax.launchers import cli
from priorax.networks import distributions
from priorax.utils import checkpointing
from tests.launchers.conftest import TINY

FAMILY = "family:reacher_targets"
HOLDOUT = "family:reacher_targets-holdout"
PRIOR_KEYS = ("position", "velocity")  # Not `to_target`: the task key.


def _train(run_dir, env, steps, *extra):
  return cli.main(["train", "--env", env, "--steps", str(steps), "--run-dir", str(run_dir),
                   "--eval-every", str(steps), "--eval-episodes", "1", "--log-every-s", "0.2",
                   *TINY, *extra])


def _learner_rows(run_dir):
  with open(run_dir / "logs" / "learner.csv") as f:
    return list(csv.DictReader(f))


def _state(run_dir):
  return checkpointing.Checkpointer(str(run_dir / "checkpoints")).load_latest()["learner_state"]


@pytest.fixture(scope="module")
def family_run(tmp_path_factory):
  run_dir = tmp_path_factory.mktemp("family")
  assert _train(run_dir, FAMILY, 500, "--set", "prior=learned", "--set",
                f"prior_observation_keys={','.join(PRIOR_KEYS)}", "--set",
                "prior_hidden_sizes=16,16") == 0
  return run_dir


def _assert_trees_equal(a, b):
  jax.tree_util.tree_map(np.testing.assert_array_equal, a, b)


def test_frozen_transferred_prior_receives_no_update(family_run, tmp_path):
  run_dir = tmp_path / "frozen"
  assert _train(run_dir, HOLDOUT, 300, "--prior-from", str(family_run), "--freeze-prior") == 0
  config = json.loads((run_dir / "config.json").read_text())["agent_config"]
  # The prior's settings came from the family run; the run directory records them.
  assert config["prior"] == "learned" and config["prior_observation_keys"] == list(PRIOR_KEYS)
  assert config["prior_hidden_sizes"] == [16, 16]
  assert config["prior_from"] == str(family_run) and config["freeze_prior"] is True
  rows = _learner_rows(run_dir)
  assert rows and int(rows[-1]["learner_steps"]) > 0
  assert "prior_loss" not in rows[0]
  assert np.all(np.isfinite([float(r["kl_mean"]) for r in rows]))
  state = _state(run_dir)
  _assert_trees_equal(state["prior_params"], _state(family_run)["prior_params"])
  assert state["prior_opt_state"] == ()


def test_unfrozen_transferred_prior_starts_from_the_family_prior_and_keeps_learning(
    family_run, tmp_path):
  run_dir = tmp_path / "trained"
  assert _train(run_dir, HOLDOUT, 300, "--prior-from", str(family_run)) == 0
  assert "prior_loss" in _learner_rows(run_dir)[0]
  before, after = _state(family_run)["prior_params"], _state(run_dir)["prior_params"]
  moved = [np.max(np.abs(a - b)) for a, b in zip(jax.tree_util.tree_leaves(before),
                                                 jax.tree_util.tree_leaves(after))]
  assert 0.0 < max(moved) < 1.0  # Updated by distillation, from the family prior (not re-drawn).


def _loaded_prior(run_dir, env, keys=PRIOR_KEYS, hidden_sizes=(16, 16)):
  environment_spec = specs.make_environment_spec(envs.make_environment(env, seed=0))
  return builder_lib.load_learned_prior(
      str(run_dir), environment_spec.observations,
      int(np.prod(environment_spec.actions.shape)), observation_keys=keys,
      hidden_sizes=hidden_sizes, trainable=False)


def test_transferred_prior_sees_only_its_keys(family_run):
  """Changing the hidden task key (the target) leaves π0's output unchanged; the arm does not."""
  prior = _loaded_prior(family_run, HOLDOUT)
  assert not prior.trainable
  _assert_trees_equal(prior.params, _state(family_run)["prior_params"])
  environment = envs.make_environment(HOLDOUT, seed=0)
  observation = {k: v[None] for k, v in environment.reset().observation.items()}
  pi = distributions.GaussianParams(np.zeros((1, 2), np.float32), np.ones((1, 2), np.float32))
  kl = lambda obs: np.asarray(prior.kl(prior.params, obs, pi, None, None))
  moved_target = dict(observation, to_target=observation["to_target"] + 0.3)
  moved_arm = dict(observation, position=observation["position"] + 0.3)
  np.testing.assert_array_equal(kl(moved_target), kl(observation))
  assert np.all(kl(moved_arm) != kl(observation))


@pytest.mark.parametrize("env, keys, hidden_sizes, message", [
    (HOLDOUT, ("position",), (16, 16),
     "its prior sees ['position', 'velocity']; this run's prior_observation_keys=['position']"),
    (HOLDOUT, PRIOR_KEYS, (32,), "its prior has prior_hidden_sizes=[16, 16]; this run's are [32]"),
    ("dmc:cartpole-swingup", PRIOR_KEYS, (16, 16),
     "its prior has 2 actions; this environment has 1"),
    ("dmc:finger-spin", PRIOR_KEYS, (16, 16),
     "the sizes of its keys ['position', 'velocity'] differ from this environment's"),
    ("family:ant_boxes", PRIOR_KEYS, (16, 16),
     "its prior sees ['position', 'velocity'], absent from this environment's observations"),
])
def test_incompatible_prior_is_refused(family_run, env, keys, hidden_sizes, message):
  with pytest.raises(checkpointing.CheckpointError, match=r"^prior_from=") as error:
    _loaded_prior(family_run, env, keys, hidden_sizes)
  assert message in str(error.value)


def test_cli_refuses_bad_transfers_in_one_line(family_run, tmp_path, capsys):
  not_learned = tmp_path / "uniform_run"
  shutil.copytree(family_run, not_learned)
  config = json.loads((not_learned / "config.json").read_text())
  config["agent_config"]["prior"] = "uniform"
  (not_learned / "config.json").write_text(json.dumps(config))
  cases = [
      (["--prior-from", str(not_learned), "--set", "prior=learned", "--set",
        "prior_observation_keys=position,velocity"], "expected a run with prior='learned'"),
      (["--prior-from", str(tmp_path / "missing")], "cannot read"),
      (["--freeze-prior"], "freeze_prior=True needs prior_from="),
      (["--prior-from", str(family_run), "--set", "prior_observation_keys=position"],
       "this run's prior_observation_keys=['position']"),
  ]
  for i, (flags, message) in enumerate(cases):
    assert _train(tmp_path / f"bad{i}", HOLDOUT, 100, *flags) == cli.EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1, err
