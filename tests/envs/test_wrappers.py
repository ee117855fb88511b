"""Each wrapper's maths on a scripted environment, then the full stack on a real dm_control task."""

import dm_env
from dm_env import specs
import numpy as np
import pytest

from priorax import envs
from priorax.envs import wrappers


class TestEnvironmentWrapper:

  def test_forwards_calls_and_attributes(self, fake_environment):
    inner = fake_environment()
    wrapped = wrappers.AtLeast1DObservationWrapper(wrappers.EnvironmentWrapper(inner))
    assert wrapped.marker == inner.marker
    assert wrapped.action_spec() == inner.action_spec()
    assert wrapped.reset().first()

  def test_missing_attribute_raises_attribute_error(self, fake_environment):
    with pytest.raises(AttributeError):
      _ = wrappers.EnvironmentWrapper(fake_environment()).no_such_attribute


class TestCanonicalActionWrapper:

  # Bounds of the fake: [-2, 1] x [0, 4]; -1 -> lower bound, 0 -> midpoint, 1 -> upper bound.
  @pytest.mark.parametrize(
      "canonical, expected",
      [
          ([-1.0, -1.0], [-2.0, 0.0]),
          ([0.0, 0.0], [-0.5, 2.0]),
          ([1.0, 1.0], [1.0, 4.0]),
          ([-1.0, 1.0], [-2.0, 4.0]),
          ([0.5, -0.5], [0.25, 1.0]),
          ([-3.0, 7.0], [-2.0, 4.0]),  # Clipped to [-1, 1] first.
      ],
  )
  def test_maps_affinely_onto_bounds(self, fake_environment, canonical, expected):
    inner = fake_environment()
    environment = wrappers.CanonicalActionWrapper(inner)
    environment.reset()
    environment.step(np.array(canonical, np.float32))
    (action,) = inner.actions
    assert action.dtype == np.float64
    np.testing.assert_allclose(action, expected, atol=1e-7)

  def test_action_spec_is_canonical_float32(self, fake_environment):
    spec = wrappers.CanonicalActionWrapper(fake_environment()).action_spec()
    assert spec == specs.BoundedArray((2,), np.float32, minimum=-1.0, maximum=1.0)

  @pytest.mark.parametrize(
      "action_spec, message",
      [
          (specs.Array((2,), np.float64), "BoundedArray"),
          (specs.BoundedArray((1,), np.float64, minimum=0.0, maximum=np.inf), "finite"),
      ],
  )
  def test_rejects_unbounded_actions(self, fake_environment, action_spec, message):
    inner = fake_environment()
    inner.action_spec = lambda: action_spec
    with pytest.raises(ValueError, match=message):
      wrappers.CanonicalActionWrapper(inner)


class TestActionRepeatWrapper:

  @pytest.mark.parametrize(
      "rewards, discounts, num_repeats, expected",
      [
          # (reward, discount, step type) per agent step.
          pytest.param([1, 2, 3, 4], [1, 1, 1, 1], 2,
                       [(3, 1, dm_env.StepType.MID), (7, 1, dm_env.StepType.LAST)], id="sums"),
          pytest.param([1, 2, 3], [1, 1, 0], 2,
                       [(3, 1, dm_env.StepType.MID), (3, 0, dm_env.StepType.LAST)],
                       id="stops_at_episode_end"),
          pytest.param([1, 2], [1, 0], 5, [(3, 0, dm_env.StepType.LAST)], id="longer_than_episode"),
          # R = r0 + d0 r1 = 1 + 0.5 * 2, D = d0 d1 = 0.25.
          pytest.param([1, 2], [0.5, 0.5], 2, [(2, 0.25, dm_env.StepType.LAST)],
                       id="discounts_multiply"),
          pytest.param([1, 2, 3], [1, 1, 0], 1,
                       [(1, 1, dm_env.StepType.MID), (2, 1, dm_env.StepType.MID),
                        (3, 0, dm_env.StepType.LAST)], id="one_repeat_is_identity"),
      ],
  )
  def test_repeats(self, fake_environment, rewards, discounts, num_repeats, expected):
    inner = fake_environment(rewards, discounts)
    environment = wrappers.ActionRepeatWrapper(inner, num_repeats)
    environment.reset()
    got = []
    for _ in expected:
      timestep = environment.step(np.zeros(2))
      got.append((timestep.reward, timestep.discount, timestep.step_type))
    assert got == expected  # Exact: every value here is a dyadic rational.
    assert len(inner.actions) == len(rewards)

  def test_step_after_last_resets(self, fake_environment):
    environment = wrappers.ActionRepeatWrapper(fake_environment([1.0]), 3)
    environment.reset()
    assert environment.step(np.zeros(2)).last()
    timestep = environment.step(np.zeros(2))
    assert timestep.first() and timestep.reward is None

  @pytest.mark.parametrize("num_repeats", [0, -1, 1.5, 2.0, True, "2"])
  def test_rejects_bad_num_repeats(self, fake_environment, num_repeats):
    with pytest.raises(ValueError, match=f"got {num_repeats!r}"):
      wrappers.ActionRepeatWrapper(fake_environment(), num_repeats)


class TestSinglePrecisionWrapper:

  def test_floats_become_float32_and_ints_stay(self, fake_environment):
    environment = wrappers.SinglePrecisionWrapper(fake_environment())
    first = environment.reset()
    mid = environment.step(np.zeros(2))
    assert first.reward is None and first.discount is None
    for timestep in (first, mid):
      assert timestep.observation["position"].dtype == np.float32
      assert timestep.observation["height"].dtype == np.float32
      assert timestep.observation["count"].dtype == np.int64
    assert mid.reward.dtype == np.float32 and mid.reward == 1.0
    assert mid.discount.dtype == np.float32 and mid.discount == 1.0
    spec = environment.observation_spec()
    assert [spec[key].dtype for key in ("position", "height", "count")] == [
        np.float32, np.float32, np.int64]
    assert environment.reward_spec().dtype == np.float32
    assert environment.discount_spec().dtype == np.float32


class TestAtLeast1DObservationWrapper:

  def test_scalars_become_shape_1(self, fake_environment):
    environment = wrappers.AtLeast1DObservationWrapper(fake_environment())
    observation = environment.reset().observation
    spec = environment.observation_spec()
    for key, shape in [("position", (2,)), ("height", (1,)), ("count", (1,))]:
      assert spec[key].shape == shape and observation[key].shape == shape
    np.testing.assert_array_equal(observation["height"], [1.5])
    np.concatenate([observation[key] for key in spec])  # The point: they concatenate.


class TestObservationKeysWrapper:

  def test_keeps_keys_in_given_order(self, fake_environment):
    environment = wrappers.ObservationKeysWrapper(fake_environment(), ["height", "position"])
    assert list(environment.observation_spec()) == ["height", "position"]
    environment.reset()
    assert list(environment.step(np.zeros(2)).observation) == ["height", "position"]

  @pytest.mark.parametrize(
      "keys, message",
      [
          (["height", "target"], "key 'target'; valid keys: position, height, count"),
          ("height", "not a string"),
          ([], "non-empty"),
          (["height", "height"], "distinct"),
      ],
  )
  def test_rejects_bad_keys(self, fake_environment, keys, message):
    with pytest.raises(ValueError, match=message):
      wrappers.ObservationKeysWrapper(fake_environment(), keys)


class TestRealEnvironment:

  def test_stack_is_float32_with_canonical_actions(self):
    environment = envs.make_environment("dmc:walker-walk", seed=0)
    assert environment.action_spec() == specs.BoundedArray((6,), np.float32, -1.0, 1.0)
    timestep = environment.reset()
    timestep = environment.step(environment.action_spec().generate_value())
    for key, value in timestep.observation.items():
      assert value.dtype == np.float32 and value.ndim == 1, key
    assert timestep.observation["height"].shape == (1,)
    assert timestep.reward.dtype == np.float32 and timestep.discount.dtype == np.float32

  def test_action_repeat_sums_rewards_and_stops_at_time_limit(self):
    # cartpole's 1000-step limit with 3 repeats: 333 full agent steps, then one of a single step.
    raw = envs.make_environment("dmc:cartpole-swingup", seed=3)
    repeated = envs.make_environment("dmc:cartpole-swingup", seed=3, action_repeat=3)
    action = np.full((1,), 0.3, np.float32)
    raw_rewards = []
    timestep = raw.reset()
    while not timestep.last():
      timestep = raw.step(action)
      raw_rewards.append(float(timestep.reward))
    repeated_rewards = []
    timestep = repeated.reset()
    while not timestep.last():
      timestep = repeated.step(action)
      repeated_rewards.append(float(timestep.reward))
    assert len(raw_rewards) == 1000 and len(repeated_rewards) == 334
    expected = [sum(raw_rewards[i:i + 3]) for i in range(0, 1000, 3)]
    np.testing.assert_allclose(repeated_rewards, expected, rtol=1e-5)
