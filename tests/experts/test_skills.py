"""The `skill:` environments: shared observation keys per body and rewards as specified."""

import numpy as np
import pytest

from priorax import envs
from priorax.envs import skills


@pytest.mark.parametrize("name", skills.list_names())
def test_every_skill_has_its_body_keys(name):
  body, skill = skills.parse_name(name)
  timestep = envs.make_environment(name, seed=0).reset()
  extra = {"target"} if skill.startswith("goto_") else set()
  assert set(timestep.observation) == set(skills.BODIES[body].observation_keys) | extra


def _reward(name, qpos=None, qvel=None):
  """The task's reward at a state given by named qpos/qvel entries (others at the model's)."""
  environment = skills.load(name, seed=0)
  environment.reset()
  physics = environment.physics
  with physics.reset_context():
    physics.data.qpos[:] = physics.model.qpos0
    physics.data.qvel[:] = 0
    for joint, value in (qpos or {}).items():
      physics.named.data.qpos[joint] = value
    for joint, value in (qvel or {}).items():
      physics.named.data.qvel[joint] = value
  return environment.task.get_reward(physics)


@pytest.mark.parametrize("body,speed", [("walker", 1), ("walker", 2), ("cheetah", 2),
                                        ("cheetah", 4), ("humanoid", 1)])
def test_moving_at_v_pays_in_speed_v_not_in_minus_v(body, speed):
  root = "root" if body == "humanoid" else "rootx"
  qvel = {root: [speed, 0, 0, 0, 0, 0]} if body == "humanoid" else {root: speed}
  forward = _reward(f"skill:{body}-speed_{speed}", qvel=qvel)
  backward = _reward(f"skill:{body}-speed_{-speed}", qvel=qvel)
  still = _reward(f"skill:{body}-speed_{speed}")
  assert forward > 0.9 * _reward(f"skill:{body}-stand")  # At v: the full reward.
  assert forward > 2 * backward and forward > 2 * still


def test_speed_reward_is_a_band_around_the_target():
  assert skills.speed_reward(1.05, 1.0) == 1.0
  assert skills.speed_reward(-1.0, 1.0) == 0.0
  assert 0 < skills.speed_reward(0.5, 1.0) < 1
  assert skills.speed_reward(4.0, 4.0) == 1.0 and skills.speed_reward(2.0, 4.0) == pytest.approx(
      1 - (3.6 - 2.0) / 4)  # Band [3.6, 4.4], linear to 0 over 4 m/s.


def test_standing_pays_for_being_upright():
  upright = _reward("skill:walker-stand")
  lying = _reward("skill:walker-stand", qpos={"rootz": -1.05, "rooty": np.pi / 2})
  assert upright > 0.95 and lying < 0.5
  assert _reward("skill:walker-getup") > 2 * _reward("skill:walker-getup",
                                                    qpos={"rootz": -1.05, "rooty": np.pi / 2})
  assert _reward("skill:humanoid-stand") > 2 * _reward(
      "skill:humanoid-stand", qpos={"root": [0, 0, 0.3, 0.7071, 0, 0.7071, 0]})


def test_flip_pays_for_spinning():
  assert _reward("skill:cheetah-flip", qvel={"rooty": 6.0}) == 1.0
  assert _reward("skill:cheetah-flip", qvel={"rooty": 2.5}) == pytest.approx(0.5)
  assert _reward("skill:cheetah-flip") == 0.0


def test_getup_starts_lying_down():
  timestep = envs.make_environment("skill:walker-getup", seed=3).reset()
  assert timestep.observation["height"][0] < 0.5


def test_goto_observes_the_target_and_pays_near_it():
  environment = envs.make_environment("skill:walker-goto_3", seed=0)
  assert environment.reset().observation["target"].shape == (1,)
  at_start = _reward("skill:walker-goto_3")
  at_target = _reward("skill:walker-goto_3", qpos={"rootx": 3.0})
  assert at_target > 0.95 and at_start < 0.5 * at_target


def test_unknown_skill_lists_the_valid_ones():
  with pytest.raises(envs.UnknownEnvironmentError, match="skill:walker-speed_1"):
    envs.make_environment("skill:walker-speed_7", seed=0)
  with pytest.raises(envs.UnknownEnvironmentError, match="Unknown body 'ant'"):
    envs.make_environment("skill:ant-stand", seed=0)
