"""Environment names: every suite task listed and parsed back, bad names explained, seeding."""

from dm_control import suite
import numpy as np
import pytest

from priorax import envs
from priorax.envs import control_suite
from priorax.envs import registry
from priorax.envs import wrappers


def test_lists_every_suite_task():
  expected = {f"dmc:{domain}-{task}" for domain, task in suite.ALL_TASKS}
  assert expected <= set(envs.list_environments())
  assert {"dmc:cartpole-swingup", "dmc:walker-walk", "dmc:ball_in_cup-catch"} <= expected


def test_names_parse_back_without_ambiguity():
  # The first "-" separates domain from task only if no domain contains one.
  assert not [domain for domain in suite.TASKS_BY_DOMAIN if "-" in domain]
  assert [control_suite.parse_name(name) for name in control_suite.list_names()] == list(
      suite.ALL_TASKS)


@pytest.mark.parametrize(
    "name, problem, closest",
    [
        ("dmc:walkr-walk", "Unknown dmc domain 'walkr'", "dmc:walker-walk"),
        ("dmc:walker-wlk", "Unknown task 'wlk' for dmc domain 'walker'", "dmc:walker-walk"),
        ("dmc:ball-in-cup-catch", "Unknown dmc domain 'ball'", "dmc:ball_in_cup-catch"),
        ("dmc:cartpole", "Missing '-<task>'", "dmc:cartpole-swingup"),
        ("dmx:cartpole-swingup", "Unknown prefix 'dmx'", "dmc:cartpole-swingup"),
        ("cartpole-swingup", "Missing '<prefix>:'", "dmc:cartpole-swingup"),
        ("", "Missing '<prefix>:'", None),
    ],
)
def test_unknown_names_list_valid_names_closest_first(name, problem, closest):
  with pytest.raises(envs.UnknownEnvironmentError) as raised:
    envs.make_environment(name, seed=0)
  message = str(raised.value)
  assert isinstance(raised.value, ValueError)
  assert message.startswith(f"{problem}")
  assert f"environment name {name!r}" in message
  listed = message.split("Valid names (closest first): ")[1].rstrip(".").split(", ")
  # A bad name of a known family lists that family's names; any other bad name lists them all.
  valid = control_suite.list_names() if name.startswith("dmc:") else envs.list_environments()
  assert sorted(listed) == sorted(valid)
  if closest is not None:
    assert listed[0] == closest


@pytest.mark.parametrize("action_repeat", [0, -2, 2.0, True, None])
def test_bad_action_repeat_names_the_value(action_repeat):
  with pytest.raises(ValueError, match=f"action_repeat must be an int >= 1: got {action_repeat!r}"):
    envs.make_environment("dmc:cartpole-swingup", seed=0, action_repeat=action_repeat)


def test_observation_keys_select_in_order():
  environment = envs.make_environment(
      "dmc:walker-walk", seed=0, observation_keys=["velocity", "height"])
  observation = environment.reset().observation
  assert list(observation) == ["velocity", "height"]
  assert observation["height"].shape == (1,) and observation["height"].dtype == np.float32


def test_unknown_observation_key_lists_valid_keys():
  with pytest.raises(ValueError, match="'target'; valid keys: orientations, height, velocity"):
    envs.make_environment("dmc:walker-walk", seed=0, observation_keys=["target"])


def test_seed_sets_initial_state():
  def initial_position(seed):
    environment = envs.make_environment("dmc:cartpole-swingup", seed=seed)
    return environment.reset().observation["position"]

  np.testing.assert_array_equal(initial_position(7), initial_position(7))
  assert not np.array_equal(initial_position(7), initial_position(8))


class TestRegister:

  @pytest.fixture(autouse=True)
  def _restore_registry(self, monkeypatch):
    monkeypatch.setattr(registry, "_FAMILIES", dict(registry._FAMILIES))

  def test_new_family_is_listed_made_and_wrapped(self, fake_environment):
    envs.register("fake", lambda name, seed: fake_environment(), lambda: ["fake:scripted"])
    assert envs.list_environments()[-1] == "fake:scripted"
    environment = envs.make_environment("fake:scripted", seed=0, action_repeat=2)
    assert isinstance(environment, wrappers.SinglePrecisionWrapper)
    assert environment.action_spec().minimum == -1.0
    timestep = environment.step(np.zeros(2, np.float32))  # The fake resets on its first step.
    timestep = environment.step(np.zeros(2, np.float32))
    assert timestep.reward == 3.0 and timestep.reward.dtype == np.float32

  @pytest.mark.parametrize("prefix, message", [
      ("dmc", "already registered"),
      ("", "non-empty"),
      ("a:b", "without ':'"),
  ])
  def test_rejects_bad_prefixes(self, prefix, message):
    with pytest.raises(ValueError, match=message):
      envs.register(prefix, control_suite.load, control_suite.list_names)
