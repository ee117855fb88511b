"""The frozen decoder as a low level: the agent's action a is the latent z = 3a."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from priorax import envs
from priorax.agents.npmp import acting
from priorax.agents.npmp import config as config_lib
from priorax.agents.npmp import networks as networks_lib

ENV = "dmc:point_mass-easy"


def _saved(latent_size=3):
  config = config_lib.NPMPConfig(latent_size=latent_size, encoder_hidden_sizes=(8,),
                                 decoder_hidden_sizes=(8,))
  networks = networks_lib.make_networks({"position": (2,), "velocity": (2,)}, 2, config)
  return acting.SavedNPMP(networks, networks.init(jax.random.PRNGKey(0)), config,
                          {"action_repeat": 1})


def test_wrapper_steps_the_environment_with_the_decoders_action():
  saved = _saved()
  wrapped = acting.LowLevelWrapper(envs.make_environment(ENV, 7), saved, latent_repeat=2)
  raw = envs.make_environment(ENV, 7)
  assert wrapped.action_spec().shape == (3,)
  assert np.all(wrapped.action_spec().minimum == -1) and np.all(wrapped.action_spec().maximum == 1)
  timestep, expected = wrapped.reset(), raw.reset()
  decoder = jax.jit(lambda o, z: jnp.tanh(saved.networks.decoder_apply(
      saved.params["decoder"], jax.tree_util.tree_map(lambda x: x[None], o), z[None]).mean[0]))
  for action in (np.array([0.5, -1.0, 0.2], np.float32), np.array([2.0, 0.0, -3.0], np.float32)):
    z = acting.LATENT_BOUND * np.clip(action, -1, 1)  # Out-of-box actions are clipped first.
    reward = 0.0
    for _ in range(2):
      expected = raw.step(np.asarray(decoder(expected.observation, jnp.asarray(z))))
      reward += expected.reward
    timestep = wrapped.step(action)
    for k in expected.observation:
      np.testing.assert_allclose(timestep.observation[k], expected.observation[k], atol=1e-6)
    np.testing.assert_allclose(timestep.reward, reward, rtol=1e-6)


def test_wrapper_refuses_an_environment_without_the_decoders_keys():
  with pytest.raises(ValueError, match="observation keys"):
    acting.LowLevelWrapper(envs.make_environment("dmc:walker-stand", 0), _saved())


def test_reference_window_repeats_the_last_frame():
  reference = {"x": np.zeros((6, 1))}  # x_0 … x_5.
  assert acting.reference_window(reference, 0, 3) == (1, 2, 3)
  assert acting.reference_window(reference, 4, 3) == (5, 5, 5)
