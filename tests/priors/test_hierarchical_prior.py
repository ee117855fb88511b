"""The hierarchical latent prior: its high-level KL bounds the KL of the marginal action
distributions (float64 Monte Carlo over z and a), it is the exact Gaussian KL, each level sees only
its keys, and transferred pieces are read back from a run directory with clear errors."""

import dataclasses
import json

import jax
import numpy as np
import pytest
from dm_env import specs as dm_specs

from priorax import priors
from priorax import specs
from priorax.agents import kl_svg0
from priorax.agents.kl_svg0 import hierarchical
from priorax.networks import distributions
from priorax.networks import policies
from priorax.utils import checkpointing

K, D = 2, 2  # Latent and action sizes.
SPEC = specs.EnvironmentSpec(
    observations={"proprio": dm_specs.Array((3,), np.float32),
                  "goal": dm_specs.Array((2,), np.float32)},
    actions=dm_specs.BoundedArray((D,), np.float32, -1.0, 1.0),
    rewards=dm_specs.Array((), np.float32), discounts=dm_specs.Array((), np.float32))
# π_H sees everything, π0_H and π_L only the proprioception.
CONFIG = kl_svg0.KLSVG0Config(
    prior="hierarchical", latent_size=K, policy_hidden_sizes=(16, 16),
    prior_hidden_sizes=(16, 16), low_level_hidden_sizes=(16, 16),
    prior_observation_keys=("proprio",), low_level_observation_keys=("proprio",),
    layer_norm=False, min_scale=0.2)


def _perturb(params, seed, scale):
  """Random weights of a useful size (fresh heads output ≈ constants)."""
  leaves, treedef = jax.tree_util.tree_flatten(params)
  keys = jax.random.split(jax.random.PRNGKey(seed), len(leaves))
  return jax.tree_util.tree_unflatten(
      treedef, [p + scale * jax.random.normal(k, p.shape) for p, k in zip(leaves, keys)])


def _pieces(seed):
  builder = kl_svg0.KLSVG0Builder(CONFIG)
  networks, prior = builder.make_networks(SPEC), builder.make_prior(SPEC)
  policy = networks.policy_init(jax.random.PRNGKey(seed))
  # Scales where the Monte-Carlo reference is accurate: π_L's spread over z is a few of its
  # standard deviations (a much steeper π_L makes the inner density estimates noisy).
  policy = {"high": _perturb(policy["high"], seed + 1, 0.3),
            "low": _perturb(policy["low"], seed + 2, 0.6)}
  prior_params = _perturb(prior.init(jax.random.PRNGKey(seed + 3)), seed + 4, 0.3)
  return networks, prior, policy, prior_params


def _observation(seed, batch=1):
  rng = np.random.default_rng(seed)
  return {k: rng.normal(size=(batch, *s.shape)).astype(np.float32)
          for k, s in SPEC.observations.items()}


def _log_normal(x, mean, std):
  """log N(x; mean, std²) summed over the last axis, float64, broadcasting."""
  return np.sum(-0.5 * ((x - mean) / std) ** 2 - np.log(std) - 0.5 * np.log(2 * np.pi), -1)


def _log_mixture(u, means, stds, chunk=500):
  """log (1/M) Σ_j N(u_i; μ_j, σ_j²) for u [N, D] and M components [M, D]: [N], float64."""
  out = []
  for start in range(0, len(u), chunk):
    log_n = _log_normal(u[start:start + chunk, None, :], means[None], stds[None])
    peak = log_n.max(axis=1, keepdims=True)
    out.append(peak[:, 0] + np.log(np.mean(np.exp(log_n - peak), axis=1)))
  return np.concatenate(out)


def _full_kl_monte_carlo(high, prior_high, low_gaussian, rng, n_outer, n_inner):
  """KL(π ‖ π0) of the marginals over a, by float64 Monte Carlo over z and a.

  π(a) = E_{z~π_H} π_L(a|z) and π0(a) = E_{z~π0_H} π_L(a|z); both are densities of the same
  a = tanh(u), so the tanh Jacobian cancels in log π(a) − log π0(a) and the KL is that of the
  pre-squash mixtures over u. Outer: u_i ~ π (z_i ~ π_H, u_i ~ π_L(.|z_i)); inner: each marginal
  density at u_i is a mean over n_inner fresh latents of that level.

  Returns:
    (estimate, standard error of the outer mean, |estimate with n_inner/4 − estimate|): the last
    bounds the inner log-mean's O(1/n_inner) bias (the smaller sample's bias is ≈4× larger).
  """
  def latents(gaussian, n):
    return gaussian.mean + gaussian.std * rng.normal(size=(n, K))

  z = latents(high, n_outer)
  mean, std = low_gaussian(z)
  u = mean + std * rng.normal(size=mean.shape)
  components_p = low_gaussian(latents(high, n_inner))
  components_q = low_gaussian(latents(prior_high, n_inner))

  def estimate(m):
    terms = (_log_mixture(u, components_p[0][:m], components_p[1][:m])
             - _log_mixture(u, components_q[0][:m], components_q[1][:m]))
    return terms.mean(), terms.std() / np.sqrt(len(terms))

  full, standard_error = estimate(n_inner)
  return full, standard_error, abs(estimate(n_inner // 4)[0] - full)


def _as64(gaussian):
  return distributions.GaussianParams(np.float64(gaussian.mean[0]), np.float64(gaussian.std[0]))


def _prior_gaussian(prior_params, observation):
  """π0_H(.|x_D) of the first example, float64, from the network the prior is built on."""
  network = policies.make_gaussian_policy(K, CONFIG.prior_hidden_sizes,
                                          observation_keys=CONFIG.prior_observation_keys,
                                          layer_norm=CONFIG.layer_norm, min_scale=CONFIG.min_scale)
  return _as64(network.apply(prior_params, observation))


def test_monte_carlo_reference_recovers_a_known_marginal_kl():
  """Check of the reference itself: with π_L(u|z) = N(z, s²), the marginals are Gaussians
  N(μ, σ² + s²), whose KL is known in closed form."""
  rng = np.random.default_rng(0)
  high = distributions.GaussianParams(np.array([0.3, -0.5]), np.array([0.8, 0.5]))
  prior_high = distributions.GaussianParams(np.array([-0.4, 0.2]), np.array([1.1, 0.7]))
  s = 0.4
  full, standard_error, bias = _full_kl_monte_carlo(
      high, prior_high, lambda z: (z, np.full_like(z, s)), rng, n_outer=2000, n_inner=4000)
  widen = lambda g: distributions.GaussianParams(g.mean, np.sqrt(g.std ** 2 + s ** 2))
  exact = float(distributions.gaussian_kl(widen(high), widen(prior_high)))
  high_level = float(distributions.gaussian_kl(high, prior_high))
  assert exact < high_level  # The bound is strict here.
  np.testing.assert_allclose(full, exact, atol=4 * standard_error + bias)


@pytest.mark.parametrize("seed", [0, 1, 3])
def test_high_level_kl_is_an_upper_bound_of_the_full_kl(seed):
  """KL(π(.|x) ‖ π0(.|x)) ≤ KL(π_H(.|x) ‖ π0_H(.|x_D)), the shared π_L being a real network."""
  networks, prior, policy, prior_params = _pieces(seed)
  observation = _observation(seed + 10)
  high = networks.high_apply(policy["high"], observation)
  high_level = float(prior.kl(prior_params, observation, high, None, None)[0])

  def low_gaussian(z):
    batch = {k: np.repeat(v, len(z), axis=0) for k, v in observation.items()}
    gaussian = networks.low_apply(policy["low"], np.float32(z), batch)
    return np.float64(gaussian.mean), np.float64(gaussian.std)

  full, standard_error, bias = _full_kl_monte_carlo(
      _as64(high), _prior_gaussian(prior_params, observation), low_gaussian, np.random.default_rng(seed), n_outer=2000,
      n_inner=6000)
  tolerance = 4 * standard_error + bias
  print(f"seed {seed}: full KL {full:.4f} ± {tolerance:.4f}, high-level KL {high_level:.4f}")
  assert full <= high_level + tolerance
  # Not vacuous: the low level depends on z enough that the marginals differ measurably.
  assert full > tolerance


def test_kl_is_the_closed_form_gaussian_kl_and_matches_monte_carlo():
  """The prior's KL is gaussian_kl(π_H, π0_H) over the unsquashed z, against a float64 Monte-Carlo
  estimate of E_{z~π_H}[log π_H(z) − log π0_H(z)]."""
  networks, prior, policy, prior_params = _pieces(0)
  observation = _observation(3)
  high = networks.high_apply(policy["high"], observation)
  kl = float(prior.kl(prior_params, observation, high, None, None)[0])
  p, q = _as64(high), _prior_gaussian(prior_params, observation)
  z = p.mean + p.std * np.random.default_rng(0).normal(size=(400_000, K))
  samples = _log_normal(z, p.mean, p.std) - _log_normal(z, q.mean, q.std)
  assert kl > 0.05
  np.testing.assert_allclose(kl, samples.mean(), atol=4 * samples.std() / np.sqrt(len(samples)))


@pytest.mark.parametrize("jit", [False, True])
def test_each_level_sees_only_its_keys(jit):
  networks, prior, policy, prior_params = _pieces(0)
  observation = _observation(0, batch=8)
  changed_goal = dict(observation, goal=observation["goal"] + 10.0)
  changed_proprio = dict(observation, proprio=observation["proprio"] + 1.0)
  maybe_jit = jax.jit if jit else (lambda f: f)
  high_apply, low_apply = maybe_jit(networks.high_apply), maybe_jit(networks.low_apply)
  high = high_apply(policy["high"], observation)
  kl = maybe_jit(lambda o: prior.kl(prior_params, o, high, None, None))
  z = np.random.default_rng(1).normal(size=(8, K)).astype(np.float32)
  low = lambda o: low_apply(policy["low"], z, o)
  # π0_H(z | proprio): the KL against a fixed π_H moves with the proprioception only.
  np.testing.assert_array_equal(kl(changed_goal), kl(observation))
  assert np.all(np.abs(kl(changed_proprio) - kl(observation)) > 1e-6)
  # π_L(a | z, proprio): the goal is hidden from it too.
  jax.tree_util.tree_map(np.testing.assert_array_equal, low(changed_goal), low(observation))
  assert np.all(np.abs(low(changed_proprio).mean - low(observation).mean) > 1e-6)
  # π_H sees the goal.
  assert np.all(np.abs(high_apply(policy["high"], changed_goal).mean - high.mean) > 1e-6)


def test_prior_is_trainable_unless_frozen_with_transferred_params():
  fresh = priors.make_hierarchical_prior(SPEC.observations, latent_size=K, hidden_sizes=(8,),
                                         observation_keys=("proprio",), layer_norm=True,
                                         min_scale=1e-3)
  assert fresh.name == "hierarchical" and fresh.trainable and fresh.params is None
  params = fresh.init(jax.random.PRNGKey(0))
  frozen = priors.make_hierarchical_prior(SPEC.observations, latent_size=K, hidden_sizes=(8,),
                                          observation_keys=("proprio",), layer_norm=True,
                                          min_scale=1e-3, params=params, trainable=False)
  assert not frozen.trainable and frozen.params is params and frozen.init is None
  with pytest.raises(ValueError, match="frozen hierarchical prior needs its params"):
    priors.make_hierarchical_prior(SPEC.observations, latent_size=K, hidden_sizes=(8,),
                                   observation_keys=("proprio",), layer_norm=True,
                                   min_scale=1e-3, trainable=False)


def _write_run(run_dir, agent_config, learner_state, agent="kl_svg0"):
  run_dir.mkdir(parents=True, exist_ok=True)
  (run_dir / "config.json").write_text(json.dumps({"agent": agent,
                                                   "agent_config": agent_config}))
  checkpointing.Checkpointer(str(run_dir / "checkpoints")).save(
      10, {"learner_state": learner_state})


def _saved_config(**changes):
  return json.loads(json.dumps(dataclasses.asdict(dataclasses.replace(CONFIG, **changes))))


def test_transferred_pieces_are_the_low_level_and_the_high_level_prior(tmp_path):
  _, _, policy, prior_params = _pieces(0)
  _write_run(tmp_path / "run", _saved_config(),
             {"policy_params": jax.device_get(policy), "prior_params": jax.device_get(prior_params)})
  pieces = priors.load_transferred_pieces(str(tmp_path / "run"), hierarchical.architecture(CONFIG))
  jax.tree_util.tree_map(np.testing.assert_array_equal, pieces.low_level_params, policy["low"])
  jax.tree_util.tree_map(np.testing.assert_array_equal, pieces.prior_params, prior_params)


@pytest.mark.parametrize("saved, agent, message", [
    ({"prior": "uniform"}, "kl_svg0", "was trained with prior='uniform'; expected a "
                                      "prior='hierarchical' run"),
    ({"latent_size": 3}, "kl_svg0", "latent_size: saved 3, now 2"),
    ({"low_level_observation_keys": ("proprio", "goal")}, "kl_svg0",
     "low_level_observation_keys: saved ['proprio', 'goal'], now ['proprio']"),
    ({}, "other_agent", "holds a 'other_agent' run; expected kl_svg0"),
])
def test_transfer_from_an_incompatible_run_fails_clearly(tmp_path, saved, agent, message):
  config = dict(_saved_config(), **json.loads(json.dumps(saved)))
  _write_run(tmp_path / "run", config, {"policy_params": {"low": {}}, "prior_params": {}}, agent)
  with pytest.raises(checkpointing.CheckpointError) as error:
    priors.load_transferred_pieces(str(tmp_path / "run"), hierarchical.architecture(CONFIG))
  assert message in str(error.value) and "prior_from=" in str(error.value)


def test_transfer_from_a_missing_run_fails_clearly(tmp_path):
  with pytest.raises(checkpointing.CheckpointError, match="prior_from=.*cannot read"):
    priors.load_transferred_pieces(str(tmp_path / "nowhere"), hierarchical.architecture(CONFIG))
