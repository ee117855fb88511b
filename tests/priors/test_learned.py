"""The learned default policy π0(a | x_D): it sees only its keys, its KL is the exact pre-squash
Gaussian KL (checked against a float64 Monte-Carlo reference), and bad keys fail at construction."""

import jax
import numpy as np
import pytest
from dm_env import specs as dm_specs

from priorax import priors
from priorax.networks import distributions
from priorax.priors import base

D = 2
OBSERVATION_SPEC = {"proprio": dm_specs.Array((3,), np.float32),
                    "goal": dm_specs.Array((2,), np.float32)}


def _prior(keys=("proprio",)):
  return priors.make_learned_prior(OBSERVATION_SPEC, action_size=D, hidden_sizes=(16, 16),
                                   observation_keys=keys, layer_norm=True, min_scale=1e-3)


def _observation(seed, batch=8):
  rng = np.random.default_rng(seed)
  return {k: rng.normal(size=(batch, *s.shape)).astype(np.float32)
          for k, s in OBSERVATION_SPEC.items()}


def _policy(batch=8):
  rng = np.random.default_rng(42)
  return distributions.GaussianParams(rng.normal(size=(batch, D)).astype(np.float32),
                                      rng.uniform(0.2, 1.0, size=(batch, D)).astype(np.float32))


def test_is_trainable_and_initialised_by_the_learner():
  prior = _prior()
  assert prior.name == "learned" and prior.trainable and prior.params is None
  params = prior.init(jax.random.PRNGKey(0))
  # A fresh key gives fresh params.
  other = prior.init(jax.random.PRNGKey(1))
  assert any(np.any(a != b) for a, b in zip(jax.tree_util.tree_leaves(params),
                                            jax.tree_util.tree_leaves(other)))


@pytest.mark.parametrize("jit", [False, True])
def test_prior_output_ignores_the_hidden_key(jit):
  prior = _prior(("proprio",))
  params = prior.init(jax.random.PRNGKey(0))
  # Give the head non-trivial weights so the output depends on its inputs.
  params = jax.tree_util.tree_map(
      lambda p: p + 0.3 * jax.random.normal(jax.random.PRNGKey(5), p.shape), params)
  kl = jax.jit(prior.kl) if jit else prior.kl
  observation = _observation(0)
  changed_goal = dict(observation, goal=observation["goal"] + 10.0)
  changed_proprio = dict(observation, proprio=observation["proprio"] + 1.0)
  reference = kl(params, observation, _policy(), None, None)
  np.testing.assert_array_equal(kl(params, changed_goal, _policy(), None, None), reference)
  assert np.all(np.abs(kl(params, changed_proprio, _policy(), None, None) - reference) > 1e-6)


def test_kl_is_the_closed_form_gaussian_kl_and_matches_monte_carlo():
  """KL(tanh#N_π ‖ tanh#N_π0) = KL(N_π ‖ N_π0): against a float64 Monte-Carlo estimate of
  E_π[log π(a) − log π0(a)] on the squashed actions (change of variables in both densities)."""
  from priorax.networks import policies
  prior = _prior(("proprio", "goal"))
  params = jax.tree_util.tree_map(
      lambda p: p + 0.3 * jax.random.normal(jax.random.PRNGKey(5), p.shape),
      prior.init(jax.random.PRNGKey(0)))
  observation = _observation(0, batch=1)
  policy = distributions.GaussianParams(np.asarray([[0.4, -0.7]], np.float32),
                                        np.asarray([[0.5, 0.3]], np.float32))
  kl = float(prior.kl(params, observation, policy, None, None)[0])

  network = policies.make_gaussian_policy(D, (16, 16), observation_keys=("proprio", "goal"),
                                          layer_norm=True, min_scale=1e-3)
  prior_gaussian = network.apply(params, observation)
  np.testing.assert_allclose(kl, distributions.gaussian_kl(policy, prior_gaussian)[0], rtol=1e-6)

  rng = np.random.default_rng(0)
  mu_p, sd_p = np.float64(policy.mean[0]), np.float64(policy.std[0])
  mu_q, sd_q = np.float64(prior_gaussian.mean[0]), np.float64(prior_gaussian.std[0])
  u = mu_p + sd_p * rng.normal(size=(400_000, D))
  a = np.tanh(u)
  # Both log-densities of the squashed action a = tanh(u) by change of variables, in float64.
  u_back = np.arctanh(np.clip(a, -1 + 1e-15, 1 - 1e-15))
  log_det = np.sum(np.log1p(-np.tanh(u_back) ** 2), -1)
  log_normal = lambda x, m, s: np.sum(-0.5 * ((x - m) / s) ** 2 - np.log(s)
                                      - 0.5 * np.log(2 * np.pi), -1)
  log_p = log_normal(u_back, mu_p, sd_p) - log_det
  log_q = log_normal(u_back, mu_q, sd_q) - log_det
  samples = log_p - log_q
  np.testing.assert_allclose(kl, samples.mean(), atol=4 * samples.std() / np.sqrt(len(samples)))


@pytest.mark.parametrize("keys, message", [
    (("proprio", "target"), "unknown observation key 'target'; valid keys: ['goal', 'proprio']"),
    ((), "must name at least one observation key"),
])
def test_unknown_or_missing_keys_fail_at_construction(keys, message):
  with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
    _prior(keys)


def test_prior_takes_exactly_one_of_params_and_init():
  kl = base.closed_form_gaussian_kl(lambda p, o: None)
  with pytest.raises(ValueError, match="exactly one of params and init"):
    base.Prior(name="x", params=None, kl=kl)
  with pytest.raises(ValueError, match="exactly one of params and init"):
    base.Prior(name="x", params=(), kl=kl, init=lambda key: ())
