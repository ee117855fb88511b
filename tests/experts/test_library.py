"""The expert-library index round-trips and rejects what is not a library."""

import json
import os

import pytest

from priorax import experts


def _skill(name):
  return experts.Skill(name=name, environment="dmc:walker-walk", action_repeat=2,
                       expert=f"{name}/run", rollouts=f"{name}/rollouts", episodes=3,
                       transitions=1500, mean_return=410.5, train_env_steps=10_000,
                       train_cpu_seconds=12.5)


def _make_dirs(path, names):
  for name in names:
    os.makedirs(path / name / "run")
    os.makedirs(path / name / "rollouts")


def test_round_trip_and_selection(tmp_path):
  _make_dirs(tmp_path, ["walk", "run"])
  experts.write_library(str(tmp_path), "walker", ["orientations", "height", "velocity"],
                        [_skill("walk"), _skill("run")])
  library = experts.load_library(str(tmp_path))
  assert library.body == "walker"
  assert library.observation_keys == ("orientations", "height", "velocity")
  assert library.skills == (_skill("walk"), _skill("run"))
  assert library.expert_dir(library.skill("run")) == os.path.join(str(tmp_path), "run/run")
  only_run = experts.load_library(str(tmp_path), skills=["run"])
  assert [s.name for s in only_run.skills] == ["run"]


def test_errors_name_the_problem(tmp_path):
  with pytest.raises(experts.LibraryError, match="no library.json"):
    experts.load_library(str(tmp_path))
  _make_dirs(tmp_path, ["walk"])
  with pytest.raises(experts.LibraryError, match="unique"):
    experts.write_library(str(tmp_path), "walker", ["height"], [_skill("walk"), _skill("walk")])
  with pytest.raises(experts.LibraryError, match="missing directory"):
    experts.write_library(str(tmp_path), "walker", ["height"], [_skill("walk"), _skill("jump")])
  experts.write_library(str(tmp_path), "walker", ["height"], [_skill("walk")])
  with pytest.raises(experts.LibraryError, match="no skill 'jump'.*skills: walk"):
    experts.load_library(str(tmp_path), skills=["jump"])
  index = json.loads((tmp_path / "library.json").read_text())
  index["format"] = "something-else/0"
  (tmp_path / "library.json").write_text(json.dumps(index))
  with pytest.raises(experts.LibraryError, match="expected 'priorax-expert-library/1'"):
    experts.load_library(str(tmp_path))
