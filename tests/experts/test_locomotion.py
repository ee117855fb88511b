"""The `loco:` CMU humanoid tasks, and mocap tracking with and without dm_control's mocap file."""

import os
import shutil

import numpy as np
import pytest
from dm_control.locomotion import mocap

from priorax import envs
from priorax.envs import locomotion
from priorax.experts import builder
from priorax.launchers import cli

# dm_control's own test clips (2019 humanoid, two clips of 10 steps), named like a release file.
_TEST_CLIPS = os.path.join(os.path.dirname(mocap.__file__), "test_trajectories.h5")


@pytest.fixture(name="no_mocap")
def _no_mocap(tmp_path, monkeypatch):
  monkeypatch.setenv(locomotion.MOCAP_DIR_VARIABLE, str(tmp_path / "empty"))
  return str(tmp_path / "empty")


@pytest.fixture(name="test_mocap")
def _test_mocap(tmp_path, monkeypatch):
  directory = tmp_path / "mocap"
  directory.mkdir()
  shutil.copy(_TEST_CLIPS, directory / "cmu_2019_test.h5")
  monkeypatch.setenv(locomotion.MOCAP_DIR_VARIABLE, str(directory))


def test_go_to_target_observes_proprioception_and_the_target(no_mocap):
  del no_mocap
  timestep = envs.make_environment("loco:cmu_humanoid-go_to_target", seed=0).reset()
  assert set(timestep.observation) == set(locomotion.PROPRIOCEPTION_KEYS) | {"walker/target"}


def test_without_the_mocap_file_tracking_is_refused_clearly(no_mocap, tmp_path, capsys):
  assert not any("track_" in name for name in envs.list_environments())
  with pytest.raises(envs.UnknownEnvironmentError, match=r"cmu_2020_\*\.h5.*" + no_mocap):
    envs.make_environment("loco:cmu_humanoid-track_CMU_016_22", seed=0)
  code = cli.main(["library", "--body", "cmu_humanoid", "--out", str(tmp_path / "lib")])
  assert code == cli.EXIT_BAD_INPUT
  assert "cmu_2020_*.h5" in capsys.readouterr().err
  # Other bodies do not need the file.
  assert builder.parse_skills("walker", None) == builder.DEFAULT_SKILLS["walker"]


def test_with_a_mocap_file_its_clips_are_tracking_skills(test_mocap):
  del test_mocap
  assert builder.parse_skills("cmu_humanoid", None) == ("track_cmuv2019_001", "track_cmuv2019_002")
  environment = envs.make_environment("loco:cmu_humanoid-track_cmuv2019_001", seed=0)
  timestep = environment.reset()
  assert set(locomotion.PROPRIOCEPTION_KEYS) <= set(timestep.observation)
  assert "walker/reference_rel_joints" in timestep.observation
  timestep = environment.step(np.zeros(environment.action_spec().shape, np.float32))
  assert timestep.reward > 0  # The comic reward of a pose near the reference's.
  with pytest.raises(envs.UnknownEnvironmentError, match="Unknown clip 'nope'"):
    envs.make_environment("loco:cmu_humanoid-track_nope", seed=0)
