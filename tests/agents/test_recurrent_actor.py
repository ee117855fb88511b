"""A recurrent actor on a `meta:` task, writing sequences through a real Reverb server: the core
state is kept within an episode, reset at its start, and a replayed sequence (from its stored
state, with burn-in) reproduces the actions taken online."""

import jax
import numpy as np
import pytest
import reverb

from priorax import envs
from priorax import loop
from priorax import specs
from priorax.agents import actors
from priorax.networks import recurrent
from priorax.replay import adders
from priorax.replay import packing

SEQUENCE_LENGTH = 10
PERIOD = 5
BURN_IN = 3
LSTM_SIZE = 8


class _FixedParams:
  """A variable source that always serves the same parameters."""

  def __init__(self, params):
    self._params = params

  def get_variables(self, names):
    return [self._params for _ in names]


@pytest.fixture
def setup():
  environment = envs.make_environment("meta:point_goal", seed=0)
  spec = specs.make_environment_spec(environment)
  policy_keys = [key for key in spec.observations if key != "task"]
  network = recurrent.make_recurrent_gaussian_policy(
      spec, hidden_sizes=(16,), lstm_size=LSTM_SIZE, observation_keys=policy_keys)
  params = network.init(jax.random.PRNGKey(1))
  signature = adders.SequenceAdder.signature(
      spec, SEQUENCE_LENGTH, recurrent.recurrent_extras_spec(spec, LSTM_SIZE))
  server = reverb.Server([reverb.Table.queue("queue", 10_000, signature=signature)])
  client = reverb.Client(f"localhost:{server.port}")
  adder = adders.SequenceAdder(client, "queue", sequence_length=SEQUENCE_LENGTH, period=PERIOD)

  def make_actor(adder):
    # Evaluation mode (u = μ): actions are a deterministic function of the history.
    return actors.RecurrentActor(
        recurrent.make_tanh_gaussian_policy(network, evaluation=True),
        network.initial_state(None), spec, actors.VariableClient(_FixedParams(params), "policy"),
        jax.random.PRNGKey(2), adder)

  yield environment, network, params, make_actor, adder, client
  server.stop()


def _read_all(client):
  info = client.server_info()["queue"]
  samples = client.sample("queue", num_samples=info.current_size, emit_timesteps=False,
                          unpack_as_table_signature=True)
  return [packing.unpack(info.signature, sample.data) for sample in samples]


def test_state_is_kept_within_an_episode_and_reset_at_its_start(setup):
  environment, network, _, make_actor, _, _ = setup
  actor = make_actor(adder=None)
  timestep = environment.reset()
  actor.observe_first(timestep)
  states = []
  for _ in range(5):
    action = actor.select_action(timestep.observation)
    timestep = environment.step(action)
    actor.observe(action, timestep)
    states.append(np.asarray(actor.state.hidden))
  assert all(np.any(a != b) for a, b in zip(states, states[1:]))
  actor.observe_first(environment.reset())  # A new episode, without finishing the last one.
  np.testing.assert_array_equal(actor.state.hidden, network.initial_state(None).hidden)
  with pytest.raises(ValueError, match="needs select_action first"):
    actor.observe(action, timestep)


def test_sequences_replayed_from_stored_state_reproduce_the_online_actions(setup):
  environment, network, params, make_actor, adder, client = setup
  loop.EnvironmentLoop(environment, make_actor(adder)).run(num_episodes=2)
  items = _read_all(client)
  episode_length = 120
  # Steps 0..T of each episode: T + 1 = 121 steps, sequences every 5 steps, the last padded.
  assert len(items) == 2 * (episode_length // PERIOD)
  sequences = jax.tree_util.tree_map(lambda *x: np.stack(x), *items)
  # Sequences never cross an episode; those starting mid-episode carry a non-zero state.
  starts = sequences.start_of_episode
  assert not starts[:, 1:].any() and 0 < starts[:, 0].sum() < len(items)
  stored_hidden = sequences.extras.core_state.hidden[:, 0]
  np.testing.assert_array_equal(stored_hidden[starts[:, 0]], 0.0)
  assert np.all(np.abs(stored_hidden[~starts[:, 0]]).max(axis=-1) > 0.0)

  outputs, _ = jax.jit(recurrent.unroll_with_burn_in, static_argnums=(0, 5))(
      network, params, recurrent.core_inputs_from_steps(sequences), starts,
      recurrent.stored_core_state(sequences, network.initial_state(1)), BURN_IN)
  # Step t holds a real action iff step t + 1 is real (the final x_T step holds a zero action).
  _, mask = recurrent.split_burn_in(sequences.mask, BURN_IN)
  _, actions = recurrent.split_burn_in(sequences.action, BURN_IN)
  real = np.zeros_like(mask, bool)
  real[:, :-1] = mask[:, 1:] == 1.0
  assert real.sum() > len(items) * (SEQUENCE_LENGTH - BURN_IN - 2)
  np.testing.assert_allclose(np.tanh(outputs.mean)[real], actions[real], rtol=1e-5, atol=1e-6)
