"""REQ's scripted experts and the wrapper that hands their actions to the agent."""

import numpy as np
import pytest

from priorax import envs
from priorax.agents.req import experts


def _expert_environment(name, environment_name, seed=0):
  return experts.ExpertActionWrapper(envs.make_environment(environment_name, seed),
                                     experts.make_expert(name, environment_name))


def test_wrapper_adds_expert_action_to_every_observation():
  environment = _expert_environment("point_mass", "dmc:point_mass-easy")
  spec = environment.observation_spec()[experts.EXPERT_ACTION_KEY]
  assert spec.shape == environment.action_spec().shape
  timestep = environment.reset()
  for _ in range(3):
    action = timestep.observation[experts.EXPERT_ACTION_KEY]
    assert action.dtype == np.float32 and action.shape == spec.shape
    assert np.all(np.abs(action) <= 1.0)
    timestep = environment.step(action)
  # The other keys are untouched.
  assert set(timestep.observation) == {"position", "velocity", experts.EXPERT_ACTION_KEY}


def test_point_mass_expert_reaches_the_target():
  environment = _expert_environment("point_mass", "dmc:point_mass-easy")
  timestep, total = environment.reset(), 0.0
  while not timestep.last():
    timestep = environment.step(timestep.observation[experts.EXPERT_ACTION_KEY])
    total += timestep.reward
  assert timestep.reward > 0.9 and total > 300.0


def test_lift_brick_expert_goes_through_its_waypoints_and_lifts_the_brick():
  environment = _expert_environment("lift_brick", "manip:lift_brick_features", seed=1)
  expert = environment._expert  # pylint: disable=protected-access
  timestep = environment.reset()
  start_height = environment.physics.named.data.site_xpos["duplo2x4/bounding_box"][2]
  phases = []
  while not timestep.last():
    timestep = environment.step(timestep.observation[experts.EXPERT_ACTION_KEY])
    if not phases or phases[-1] != expert.phase:
      phases.append(expert.phase)
  assert phases == ["above", "descend", "grasp", "lift"]
  height = environment.physics.named.data.site_xpos["duplo2x4/bounding_box"][2]
  assert height > start_height + 0.05


def test_stack_bricks_expert_clicks_the_loose_brick_onto_the_base():
  # Seed 0 is one of the episodes it succeeds in (about one in ten; benchmarks/req_experts.py).
  environment = _expert_environment("stack_bricks", "manip:stack_2_bricks_features", seed=0)
  expert = environment._expert  # pylint: disable=protected-access
  timestep, phases = environment.reset(), []
  while not timestep.last():
    timestep = environment.step(timestep.observation[experts.EXPERT_ACTION_KEY])
    if not phases or phases[-1] != expert.phase:
      phases.append(expert.phase)
  assert phases == ["above", "descend", "grasp", "lift", "carry", "align", "drop", "clear", "fist",
                    "push", "let_go", "retreat"]
  assert timestep.reward == pytest.approx(1.0)  # Studs in the holes: the task's full reward.
  position = environment.physics.named.data.site_xpos
  stacked = position["duplo2x4_2/bounding_box"] - position["duplo2x4/bounding_box"]
  np.testing.assert_allclose(stacked, [0.0, 0.0, 0.0192], atol=1e-3)


@pytest.mark.parametrize("angle,wrapped", [(0.1, 0.1), (np.pi + 0.1, 0.1), (-np.pi / 2 - 0.1,
                                                                             np.pi / 2 - 0.1)])
def test_brick_headings_are_compared_modulo_a_half_turn(angle, wrapped):
  assert experts._wrap_half_turn(angle) == pytest.approx(wrapped)  # pylint: disable=protected-access


def test_expert_restarts_its_waypoints_each_episode():
  environment = _expert_environment("lift_brick", "manip:lift_brick_features")
  expert = environment._expert  # pylint: disable=protected-access
  timestep = environment.reset()
  for _ in range(120):
    timestep = environment.step(timestep.observation[experts.EXPERT_ACTION_KEY])
  assert expert.phase != "above"
  environment.reset()
  assert expert.phase == "above"


def test_unknown_expert_or_wrong_environment_is_refused():
  with pytest.raises(experts.UnknownExpertError, match="unknown expert 'nope'"):
    experts.make_expert("nope", "dmc:point_mass-easy")
  with pytest.raises(experts.UnknownExpertError, match="controls dmc:manipulator-bring_ball"):
    experts.make_expert("bring_ball", "dmc:point_mass-easy")


def test_manipulation_family_is_registered():
  assert "manip:lift_brick_features" in envs.list_environments()
  assert not any(n.endswith("_vision") for n in envs.list_environments())
  with pytest.raises(envs.UnknownEnvironmentError, match="Unknown manip task 'lift_brik'"):
    envs.make_environment("manip:lift_brik", 0)
