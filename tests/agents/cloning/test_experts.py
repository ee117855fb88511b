"""Experts: loading a trained run, the Jacobian and the first-order expansion (LFPC's label)."""

import jax
import numpy as np
import pytest

from priorax import envs
from priorax.agents.cloning import experts
from priorax.utils import checkpointing

from tests.agents.cloning import conftest


def _observations(seed, n=6):
  rng = np.random.default_rng(seed)
  return {"position": rng.normal(size=(n, 2)).astype(np.float32) * 0.2,
          "velocity": rng.normal(size=(n, 2)).astype(np.float32)}


def _linear_expert():
  rng = np.random.default_rng(0)
  return experts.make_linear_expert(
      {"position": rng.normal(size=(2, 2)), "velocity": rng.normal(size=(2, 2))},
      rng.normal(size=2), std=0.3)


@pytest.mark.parametrize("jitted", [False, True])
def test_lfpc_label_is_exact_at_a_linear_expert(jitted):
  expert = _linear_expert()
  s, delta = _observations(1), _observations(2)
  shifted = jax.tree_util.tree_map(lambda a, b: a + b, s, delta)
  linearised = jax.jit(expert.linearised_mean) if jitted else expert.linearised_mean
  np.testing.assert_allclose(linearised(s, delta), expert.distribution(shifted).mean,
                             rtol=1e-6, atol=1e-6)


def test_jacobian_of_a_linear_expert_is_its_weights():
  expert = _linear_expert()
  jacobian = expert.jacobian(_observations(3))
  for key in ("position", "velocity"):
    assert jacobian[key].shape == (6, 2, 2)
    np.testing.assert_allclose(jacobian[key], np.broadcast_to(expert.params["weights"][key],
                                                              (6, 2, 2)), rtol=1e-6)


def test_trained_expert_loads_and_its_expansion_agrees_with_its_jacobian(expert_run_dir):
  expert = experts.load_expert(expert_run_dir)
  assert expert.action_size == 2 and expert.run["env"] == conftest.ENV
  s = _observations(4)
  delta = jax.tree_util.tree_map(lambda x: 1e-2 * x, _observations(5))
  jacobian = expert.jacobian(s)
  first_order = expert.distribution(s).mean + sum(
      np.einsum("bdf,bf->bd", jacobian[k], delta[k]) for k in s)
  np.testing.assert_allclose(expert.linearised_mean(s, delta), first_order, rtol=1e-5, atol=1e-6)
  # Small δ: the expansion is close to the expert queried at s + δ (error O(|δ|²)).
  shifted = jax.tree_util.tree_map(lambda a, b: a + b, s, delta)
  np.testing.assert_allclose(expert.linearised_mean(s, delta), expert.distribution(shifted).mean,
                             atol=1e-3)
  np.testing.assert_allclose(expert.mean_action(s), np.tanh(expert.distribution(s).mean),
                             rtol=1e-6)


def test_scripted_expert_solves_point_mass():
  expert = experts.make_scripted_expert("dmc:point_mass-easy")
  environment = envs.make_environment("dmc:point_mass-easy", 0, action_repeat=4)
  act = jax.jit(expert.mean_action)
  timestep, episode_return = environment.reset(), 0.0
  while not timestep.last():
    observation = {k: v[None] for k, v in timestep.observation.items()}
    timestep = environment.step(np.asarray(act(observation))[0])
    episode_return += timestep.reward
  assert episode_return > 600  # A random policy scores a few tens here.


def test_unknown_scripted_expert_lists_the_known_ones():
  with pytest.raises(ValueError, match="point_mass-easy"):
    experts.make_scripted_expert("dmc:walker-walk")


def test_expert_of_a_non_policy_run_fails_clearly(tmp_path):
  (tmp_path / "config.json").write_text('{"agent": "stream"}')
  with pytest.raises(checkpointing.CheckpointError, match="expected kl_svg0 or cloning"):
    experts.load_expert(str(tmp_path))
