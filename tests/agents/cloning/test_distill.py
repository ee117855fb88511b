"""End to end: a tiny expert → each method → an evaluated student, through a real Reverb server;
resume; the student's run directory as a fixed prior of `kl_svg0`; the `distill` command line."""

import csv
import json
import os

import jax
import numpy as np
import pytest

from priorax import envs
from priorax.agents import cloning
from priorax.agents.kl_svg0 import builder as kl_svg0_builder
from priorax.launchers import cli
from priorax.launchers import distill
from priorax.networks import distributions

from tests.agents.cloning import conftest

ACTION_REPEAT = 4  # 250 agent steps per point-mass episode.
TINY = dict(policy_hidden_sizes=(16, 16), batch_size=32, num_updates=60, num_perturbations=2)


def _run(expert, run_dir, method, rollouts=2, seed=0, **overrides):
  config = cloning.CloningConfig(method=method, **{**TINY, **overrides})
  return distill.run_distillation(distill.DistillConfig(
      builder=cloning.CloningBuilder(config), expert=expert, environment_name=conftest.ENV,
      environment_factory=lambda s: envs.make_environment(conftest.ENV, s,
                                                          action_repeat=ACTION_REPEAT),
      run_dir=run_dir, rollouts=rollouts, seed=seed, action_repeat=ACTION_REPEAT, eval_every=30,
      eval_episodes=2, log_every_s=0.5))


def _rows(path):
  with open(path, newline="") as f:
    return list(csv.DictReader(f))


@pytest.mark.parametrize("method,overrides", [
    ("bc", {}), ("dagger", {}), ("apc", {}), ("naive_abc", {}), ("lfpc", {}),
    ("apc", {"perturb_physics": True, "loss": "cross_entropy"}),
    ("bc", {"policy_hidden_sizes": (4,), "policy_observation_keys": ("position",)}),
])
def test_each_method_trains_and_evaluates_a_student(expert_run_dir, tmp_path, method, overrides):
  expert = cloning.load_expert(expert_run_dir)
  # DAgger: one expert rollout, then two rounds of one student rollout each.
  rollouts = 3 if method == "dagger" else 1
  summary = _run(expert, str(tmp_path), method, rollouts=rollouts, **overrides)
  assert summary["actor_steps"] == rollouts * 250
  assert summary["env_steps"] == rollouts * 1000
  assert summary["demonstration_items"] == rollouts * 250
  assert summary["learner_steps"] == TINY["num_updates"]
  assert np.isfinite(summary["final_eval_return"]) and summary["eval_episodes"] == 2
  learner_rows = _rows(tmp_path / "logs" / "learner.csv")
  assert learner_rows and all(np.isfinite(float(r["loss"])) for r in learner_rows)
  assert len(_rows(tmp_path / "logs" / "evaluator.csv")) == 2  # At 30 and at the end.
  assert (tmp_path / "curve.png").exists()
  config = json.loads((tmp_path / "config.json").read_text())
  assert config["agent"] == "cloning" and config["agent_config"]["method"] == method
  if method == "dagger":
    episodes = [int(float(r["actor_episodes"])) for r in _rows(tmp_path / "logs" / "actor.csv")]
    assert episodes == [1, 2, 3]
  # The student's run directory is a fixed prior for kl_svg0 (and an expert for distillation).
  prior = kl_svg0_builder.load_policy_prior(str(tmp_path), action_size=2)
  observation = {"position": np.zeros((3, 2), np.float32),
                 "velocity": np.ones((3, 2), np.float32)}
  policy = distributions.GaussianParams(np.zeros((3, 2), np.float32),
                                        np.ones((3, 2), np.float32))
  kl = prior.kl(prior.params, observation, policy, None, None)
  assert kl.shape == (3,) and np.all(np.isfinite(kl)) and np.all(kl >= 0)


def test_dagger_schedule_spreads_the_updates_over_its_rounds():
  assert distill.make_rounds(cloning.CloningConfig(method="dagger", num_updates=60), 3) == [
      distill.Round(1, 1.0, 20), distill.Round(1, 0.0, 40), distill.Round(1, 0.0, 60)]
  assert distill.make_rounds(cloning.CloningConfig(method="apc", num_updates=60), 3) == [
      distill.Round(3, 1.0, 60)]


def test_resume_collects_nothing_twice_and_keeps_the_student(expert_run_dir, tmp_path):
  expert = cloning.load_expert(expert_run_dir)
  first = _run(expert, str(tmp_path), "apc", rollouts=1)
  before = cloning.load_expert(str(tmp_path)).params
  second = _run(expert, str(tmp_path), "apc", rollouts=1)
  assert (second["actor_steps"], second["learner_steps"]) == (first["actor_steps"],
                                                              first["learner_steps"])
  after = cloning.load_expert(str(tmp_path)).params
  jax.tree_util.tree_map(np.testing.assert_array_equal, before, after)
  with pytest.raises(Exception, match="different distillation"):
    _run(expert, str(tmp_path), "apc", rollouts=2)


def test_distill_command_line(expert_run_dir, tmp_path, capsys):
  run_dir = str(tmp_path / "student")
  code = cli.main(["distill", "--expert", expert_run_dir, "--method", "lfpc", "--rollouts", "1",
                   "--student-size", "8,8", "--updates", "20", "--eval-every", "10",
                   "--eval-episodes", "1", "--action-repeat", str(ACTION_REPEAT),
                   "--run-dir", run_dir, "--set", "batch_size=16",
                   "--set", "num_perturbations=2"])
  assert code == 0
  assert "student evaluation return" in capsys.readouterr().out
  assert json.load(open(os.path.join(run_dir, "summary.json")))["method"] == "lfpc"
  # A student's run directory is evaluated like any trained agent's.
  assert cli.main(["evaluate", "--run-dir", run_dir, "--episodes", "1"]) == 0
  assert "checkpoint at 250 steps" in capsys.readouterr().out  # One rollout of 250 actions.


@pytest.mark.parametrize("argv,message", [
    (["--expert", "/nonexistent", "--method", "bc"], "cannot read"),
    (["--expert", "scripted", "--env", "dmc:walker-walk", "--method", "bc"], "no scripted expert"),
    (["--expert", "EXPERT", "--method", "bc", "--student-obs", "nope"], "unknown observation key"),
    (["--expert", "EXPERT", "--method", "bc", "--set", "num_perturbations=0"],
     "num_perturbations=0"),
])
def test_distill_bad_input_is_one_line(expert_run_dir, tmp_path, capsys, argv, message):
  argv = [expert_run_dir if a == "EXPERT" else a for a in argv]
  code = cli.main(["distill", *argv, "--rollouts", "1", "--run-dir", str(tmp_path / "r")])
  err = capsys.readouterr().err
  assert code == cli.EXIT_BAD_INPUT
  assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
