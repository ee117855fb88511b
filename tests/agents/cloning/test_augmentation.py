"""Synthetic states: the configured scale, valid physics-state observations, each method's labels."""

import jax
import numpy as np
import pytest

from priorax import envs
from priorax.agents.cloning import augmentation
from priorax.agents.cloning import experts


def _data(seed, n=50):
  rng = np.random.default_rng(seed)
  return {"position": (rng.normal(size=(n, 2)) * [0.1, 0.3]).astype(np.float32),
          "velocity": (rng.normal(size=(n, 2)) * [2.0, 0.5]).astype(np.float32)}


@pytest.mark.parametrize("scale", [0.05, 0.3])
def test_observation_perturbations_have_the_configured_scale_in_normalised_units(scale):
  data = _data(0, n=400)
  std = augmentation.data_std(data)
  perturbed = augmentation.perturb_observations(jax.random.PRNGKey(1), data, std, scale, 50)
  for key in data:
    assert perturbed[key].shape == (400, 50, 2)
    normalised = (np.asarray(perturbed[key]) - data[key][:, None]) / std[key]
    # 40k draws per dimension: the sample std is within ~1% of σ_s.
    np.testing.assert_allclose(normalised.reshape(-1, 2).std(0), scale, rtol=0.03)
    np.testing.assert_allclose(normalised.reshape(-1, 2).mean(0), 0.0, atol=0.03 * scale)


def _collect_physics(environment, steps):
  rng = np.random.default_rng(0)
  timestep = environment.reset()
  observations, states = [], []
  for _ in range(steps):
    observations.append(timestep.observation)
    states.append(np.array(environment.physics.get_state()))
    timestep = environment.step(rng.uniform(-1, 1, environment.action_spec().shape))
  return observations, np.stack(states)


def test_observation_from_physics_is_what_the_environment_returns():
  environment = envs.make_environment("dmc:walker-walk", 0, action_repeat=2)
  timestep = environment.reset()
  for _ in range(5):
    timestep = environment.step(np.zeros(6, np.float32))
  recomputed = augmentation.observation_from_physics(environment)
  for key, value in timestep.observation.items():
    np.testing.assert_array_equal(recomputed[key], value)


@pytest.mark.parametrize("scale", [1e-5, 0.2])
def test_physics_perturbations_yield_valid_observations(scale):
  environment = envs.make_environment("dmc:walker-walk", 0, action_repeat=2)
  spec = environment.observation_spec()
  observations, states = _collect_physics(environment, 20)
  synthetic = augmentation.perturb_physics(environment, np.random.default_rng(1), states, scale, 3)
  for key, key_spec in spec.items():
    assert synthetic[key].shape == (20, 3, *key_spec.shape)
    assert synthetic[key].dtype == key_spec.dtype
    assert np.all(np.isfinite(synthetic[key]))
  originals = {k: np.stack([o[k] for o in observations]) for k in spec}
  distance = max(np.abs(synthetic[k] - originals[k][:, None]).max() for k in spec)
  if scale < 1e-3:  # A vanishing perturbation recomputes the original observation.
    assert distance < 1e-3
  else:
    assert distance > 1e-2
    # Orientations stay unit (cos, sin) pairs: they come from a consistent physics state.
    pairs = synthetic["orientations"].reshape(20, 3, 7, 2)
    np.testing.assert_allclose(np.linalg.norm(pairs, axis=-1), 1.0, atol=1e-5)


def _linear_expert():
  rng = np.random.default_rng(3)
  return experts.make_linear_expert(
      {"position": rng.normal(size=(2, 2)), "velocity": rng.normal(size=(2, 2))},
      rng.normal(size=2), std=0.3)


def test_labels_of_each_method():
  expert = _linear_expert()
  real = _data(4, n=8)
  synthetic = augmentation.perturb_observations(jax.random.PRNGKey(5), real,
                                                augmentation.data_std(real), 0.2, 4)
  flat = {k: np.asarray(v).reshape(32, 2) for k, v in synthetic.items()}
  queried = np.asarray(expert.distribution(flat).mean).reshape(8, 4, 2)
  original = np.asarray(expert.distribution(real).mean)
  labels = {m: augmentation.make_labeller(expert, m)(real, synthetic)
            for m in ("apc", "naive_abc", "lfpc")}
  for method, batch in labels.items():
    assert batch.expert_mean.shape == (8, 5, 2) and batch.weight.shape == (8, 5)
    np.testing.assert_allclose(batch.weight[0], [1.0, 0.25, 0.25, 0.25, 0.25])
    np.testing.assert_allclose(batch.expert_mean[:, 0], original, rtol=1e-6)
    np.testing.assert_allclose(batch.observation["velocity"][:, 1:], synthetic["velocity"])
  np.testing.assert_allclose(labels["apc"].expert_mean[:, 1:], queried, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(labels["naive_abc"].expert_mean[:, 1:],
                             np.repeat(original[:, None], 4, axis=1), rtol=1e-6)
  # The expert is linear, so its first-order expansion is the queried label.
  np.testing.assert_allclose(labels["lfpc"].expert_mean[:, 1:], queried, rtol=1e-5, atol=1e-5)
  bc = augmentation.make_labeller(expert, "bc")(real, None)
  assert bc.expert_mean.shape == (8, 1, 2)
  np.testing.assert_allclose(bc.expert_mean[:, 0], original, rtol=1e-6)
