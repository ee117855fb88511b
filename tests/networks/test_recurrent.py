"""Recurrent cores: a sequence replayed from its stored state, with burn-in and episode starts
inside it, gives the online pass's outputs; burn-in passes no gradient; core inputs are shifted."""

from dm_env import specs as dm_specs
import haiku as hk
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from priorax import specs
from priorax.networks import recurrent
from priorax.replay.types import Step

SPEC = specs.EnvironmentSpec(
    observations={"position": dm_specs.Array((2,), np.float32),
                  "task": dm_specs.Array((2,), np.float32)},
    actions=dm_specs.BoundedArray((2,), np.float32, -1.0, 1.0),
    rewards=dm_specs.Array((), np.float32),
    discounts=dm_specs.BoundedArray((), np.float32, 0.0, 1.0),
)
EPISODE_LENGTHS = (5, 7, 6)
SEQUENCE_LENGTH = 8
# Windows of the stream: mid-episode starts, an episode start at step 0, starts inside windows.
WINDOW_STARTS = (2, 5, 3, 9, 10)


@pytest.fixture(scope="module")
def network():
  return recurrent.make_recurrent_gaussian_policy(
      SPEC, hidden_sizes=(16,), lstm_size=8, observation_keys=["position"])


@pytest.fixture(scope="module")
def params(network):
  return network.init(jax.random.PRNGKey(0))


def _stream(network, params):
  """Plays episodes online, step by step, as the actor does; returns stored steps and outputs.

  Returns a `Step` of [N, ...] arrays (the stream, start_of_episode at each episode's first step,
  extras = what the actor stores) and the online outputs ([N, A] means).
  """
  random = np.random.RandomState(0)
  n = sum(EPISODE_LENGTHS)
  observations = {key: random.normal(size=(n, 2)).astype(np.float32) for key in ("position", "task")}
  actions = random.uniform(-1, 1, size=(n, 2)).astype(np.float32)
  rewards = random.normal(size=n).astype(np.float32)
  starts = np.zeros(n, bool)
  starts[np.cumsum((0,) + EPISODE_LENGTHS[:-1])] = True
  states, prev_actions, prev_rewards, means = [], [], [], []
  step = jax.jit(network.step)
  for t in range(n):
    if starts[t]:
      state = network.initial_state(1)
      prev_action, prev_reward = np.zeros(2, np.float32), np.float32(0.0)
    states.append(jax.tree_util.tree_map(lambda x: x[0], state))
    prev_actions.append(prev_action)
    prev_rewards.append(prev_reward)
    inputs = recurrent.CoreInput(
        {key: value[t:t + 1] for key, value in observations.items()},
        prev_action[None], np.asarray(prev_reward)[None])
    gaussian, state = step(params, inputs, state)
    means.append(gaussian.mean[0])
    prev_action, prev_reward = actions[t], rewards[t]
  extras = recurrent.RecurrentExtras(
      core_state=jax.tree_util.tree_map(lambda *x: np.stack(x), *states),
      prev_action=np.stack(prev_actions), prev_reward=np.stack(prev_rewards))
  steps = Step(observation=observations, action=actions, reward=rewards,
               discount=np.ones(n, np.float32), start_of_episode=starts,
               mask=np.ones(n, np.float32), extras=extras)
  return steps, np.stack(means)


def _windows(tree, starts=WINDOW_STARTS):
  """[N, ...] → [B, L, ...]: the windows of length L starting at `starts`."""
  return jax.tree_util.tree_map(
      lambda x: np.stack([x[s:s + SEQUENCE_LENGTH] for s in starts]), tree)


@pytest.fixture(scope="module")
def stream(network, params):
  return _stream(network, params)


@pytest.mark.parametrize("jit", [False, True])
@pytest.mark.parametrize("burn_in", [0, 1, 3, 6])
def test_replay_from_stored_state_matches_the_online_pass(network, params, stream, burn_in, jit):
  steps, online_means = stream
  sequences = _windows(steps)
  # The windows cross episode starts inside the burn-in, after it, and start mid-episode.
  assert sequences.start_of_episode[:, 1:].any() and not sequences.start_of_episode[:, 0].all()
  unroll = jax.jit(recurrent.unroll_with_burn_in, static_argnums=(0, 5)) if jit else (
      recurrent.unroll_with_burn_in)
  outputs, state = unroll(
      network, params, recurrent.core_inputs_from_steps(sequences), sequences.start_of_episode,
      recurrent.stored_core_state(sequences, network.initial_state(1)), burn_in)
  expected = _windows(online_means)[:, burn_in:]
  assert outputs.mean.shape == expected.shape
  np.testing.assert_allclose(outputs.mean, expected, rtol=1e-5, atol=1e-6)
  # The burned-in state is the one the actor stored at step burn_in, unless an episode starts
  # there (the actor then stored zeros; the unroll resets before that step's update).
  stored = _windows(steps.extras.core_state)
  for b in np.flatnonzero(~sequences.start_of_episode[:, burn_in]):
    np.testing.assert_allclose(state.hidden[b], stored.hidden[b, burn_in], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(state.cell[b], stored.cell[b, burn_in], rtol=1e-5, atol=1e-6)


def test_the_stored_state_matters(network, params, stream):
  steps, online_means = stream
  sequences = _windows(steps)
  inputs = recurrent.core_inputs_from_steps(sequences)
  zeros = network.initial_state(len(WINDOW_STARTS))
  outputs, _ = recurrent.unroll_with_burn_in(
      network, params, inputs, sequences.start_of_episode, zeros, 0)
  mid_episode = ~sequences.start_of_episode[:, 0]
  assert not np.allclose(outputs.mean[mid_episode, 0], _windows(online_means)[mid_episode, 0])
  np.testing.assert_allclose(outputs.mean[~mid_episode], _windows(online_means)[~mid_episode],
                             rtol=1e-5, atol=1e-6)


def test_burn_in_passes_no_gradient(network, params, stream):
  steps, _ = stream
  sequences = _windows(steps, starts=(2,))  # One episode start inside, at step 3.
  burn_in = 2
  state = recurrent.stored_core_state(sequences, network.initial_state(1))

  def loss(position, state):
    inputs = recurrent.core_inputs_from_steps(
        sequences._replace(observation={**sequences.observation, "position": position}))
    outputs, _ = recurrent.unroll_with_burn_in(
        network, params, inputs, sequences.start_of_episode, state, burn_in)
    return jnp.sum(outputs.mean)

  position_grad, state_grad = jax.grad(loss, argnums=(0, 1))(
      jnp.asarray(sequences.observation["position"]), state)
  per_step = np.abs(np.asarray(position_grad[0])).sum(axis=-1)
  np.testing.assert_array_equal(per_step[:burn_in], 0.0)
  assert np.all(per_step[burn_in:] > 0.0)
  for leaf in jax.tree_util.tree_leaves(state_grad):
    np.testing.assert_array_equal(leaf, 0.0)


def test_task_key_is_unseen_when_left_out(network, params, stream):
  steps, _ = stream
  sequences = _windows(steps)
  state = recurrent.stored_core_state(sequences, network.initial_state(1))

  def means(steps):
    inputs = recurrent.core_inputs_from_steps(steps)
    return network.unroll(params, inputs, steps.start_of_episode, state)[0].mean

  shuffled = sequences._replace(
      observation={**sequences.observation, "task": 10.0 + sequences.observation["task"]})
  np.testing.assert_array_equal(means(sequences), means(shuffled))


def test_core_inputs_shift_actions_and_rewards_and_zero_them_at_episode_starts():
  # One sequence of 4 steps: step 0 mid-episode (stored a_{-1} = 7, r_{-1} = 0.7), an episode
  # start at step 2.
  action = np.array([[[1.0], [2.0], [3.0], [4.0]]], np.float32)
  reward = np.array([[0.1, 0.2, 0.3, 0.4]], np.float32)
  steps = Step(
      observation={"x": np.zeros((1, 4, 1), np.float32)}, action=action, reward=reward,
      discount=np.ones((1, 4), np.float32),
      start_of_episode=np.array([[False, False, True, False]]), mask=np.ones((1, 4), np.float32),
      extras=recurrent.RecurrentExtras(
          core_state=hk.LSTMState(np.zeros((1, 4, 3)), np.zeros((1, 4, 3))),
          prev_action=np.full((1, 4, 1), 7.0, np.float32),
          prev_reward=np.full((1, 4), 0.7, np.float32)))
  inputs = recurrent.core_inputs_from_steps(steps)
  np.testing.assert_array_equal(inputs.prev_action[0, :, 0], [7.0, 1.0, 0.0, 3.0])
  np.testing.assert_allclose(inputs.prev_reward[0], [0.7, 0.1, 0.0, 0.3])


@pytest.mark.parametrize("burn_in", [-1, SEQUENCE_LENGTH])
def test_bad_burn_in_is_rejected(network, params, stream, burn_in):
  sequences = _windows(stream[0])
  with pytest.raises(ValueError, match=f"burn_in must be in \\[0, sequence length 8\\), "
                                       f"got {burn_in}"):
    recurrent.unroll_with_burn_in(
        network, params, recurrent.core_inputs_from_steps(sequences), sequences.start_of_episode,
        network.initial_state(len(WINDOW_STARTS)), burn_in)
