"""`priorax library` builds a loadable library and resumes without retraining finished skills."""

import os

import pytest

from priorax import experts
from priorax.envs import registry
from priorax.experts import builder
from priorax.launchers import cli
from priorax.launchers import overrides
from priorax.replay import episodes

# Tiny experts: a few updates of tiny networks; action repeat 20 makes a cheetah episode 50 steps.
_TINY = ["--steps", "60", "--episodes", "2", "--action-repeat", "20",
         "--set", "min_replay_size=20", "--set", "batch_size=8",
         "--set", "policy_hidden_sizes=8", "--set", "critic_hidden_sizes=8"]


def _checkpoints(out, skill):
  return sorted(os.listdir(os.path.join(out, skill, "run", "checkpoints")))


def test_builds_a_loadable_library_and_resumes(tmp_path, capsys):
  out = str(tmp_path / "library")
  assert cli.main(["library", "--body", "cheetah", "--skills", "speed_2", "--out", out,
                   *_TINY]) == 0
  first = _checkpoints(out, "speed_2")
  assert cli.main(["library", "--body", "cheetah", "--skills", "speed_2,speed_-2", "--out", out,
                   *_TINY]) == 0
  printed = capsys.readouterr().out
  assert "1/2 speed_2: already in" in printed
  assert _checkpoints(out, "speed_2") == first  # Not retrained.

  library = experts.load_library(out)
  assert library.body == "cheetah"
  assert library.observation_keys == ("position", "velocity")
  assert [s.name for s in library.skills] == ["speed_2", "speed_-2"]
  for skill in library.skills:
    assert skill.environment == f"skill:cheetah-{skill.name}"
    assert skill.episodes == 2 and skill.transitions == 100  # 2 episodes of 1000 / 20 steps.
    assert skill.train_env_steps == 60 * 20 and skill.train_cpu_seconds > 0
    paths = episodes.episode_paths(library.rollouts_dir(skill))
    assert len(paths) == 2
    steps = list(episodes.read_episode(paths[0]))
    assert sorted(steps[0][1].observation) == ["position", "velocity"]
    assert sum(float(t.reward) for _, t in steps[1:]) <= 50.0 * 20  # A per-step reward of <= 1.
    assert os.path.isdir(library.expert_dir(skill))


def test_a_larger_budget_trains_further(tmp_path, capsys):
  out = str(tmp_path / "library")
  assert cli.main(["library", "--body", "cheetah", "--skills", "speed_2", "--out", out,
                   *_TINY]) == 0
  more = [arg if arg != "60" else "80" for arg in _TINY]
  assert cli.main(["library", "--body", "cheetah", "--skills", "speed_2", "--out", out,
                   *more]) == 0
  assert "from 1,200 to 1,600 env steps" in capsys.readouterr().out
  assert experts.load_library(out).skill("speed_2").train_env_steps == 1600
  assert cli.main(["library", "--body", "cheetah", "--skills", "speed_2", "--out", out,
                   "--action-repeat", "10"]) == cli.EXIT_BAD_INPUT


def test_bad_input_is_named(tmp_path):
  with pytest.raises(registry.UnknownEnvironmentError, match="Unknown skill 'fly'"):
    builder.LibraryConfig(body="walker", out=str(tmp_path), skills=("stand", "fly"))
  with pytest.raises(overrides.ConfigError, match="unknown body 'ant'"):
    builder.LibraryConfig(body="ant", out=str(tmp_path), skills=("stand",))
  assert cli.main(["library", "--body", "walker", "--skills", "fly", "--out",
                   str(tmp_path)]) == cli.EXIT_BAD_INPUT
