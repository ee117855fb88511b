"""`kl_svg0` losses against hand-computed references, with stand-in networks whose outputs are
known in closed form (so the expected values need no network code)."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from scipy import integrate
from scipy import stats

from priorax import priors
from priorax import types
from priorax.agents.kl_svg0 import losses
from priorax.agents.kl_svg0 import networks as networks_lib
from priorax.networks import distributions
from priorax.priors import base as priors_base

B, D = 4, 2


def _networks():
  """π(.|s) = N(w_π·s, σ_π²) per action dim; Q_i(s, a) = c_i·(Σs) + Σa (i = 0, 1)."""

  def policy_apply(params, observation):
    s = observation["x"]
    return distributions.GaussianParams(s * params["w"], jnp.broadcast_to(params["std"], s.shape))

  def critic_apply(params, observation, action):
    return params["c"][:, None] * jnp.sum(observation["x"], -1)[None] + jnp.sum(action, -1)[None]

  return networks_lib.KLSVG0Networks(policy_init=None, policy_apply=policy_apply,
                                     critic_init=None, critic_apply=critic_apply, action_size=D)


@pytest.fixture
def batch():
  rng = np.random.default_rng(0)
  return types.Transition(
      observation={"x": rng.normal(size=(B, D)).astype(np.float32)},
      action=rng.uniform(-1, 1, size=(B, D)).astype(np.float32),
      reward=rng.normal(size=B).astype(np.float32),
      discount=np.asarray([0.99, 0.0, 0.99, 0.5], np.float32),
      next_observation={"x": rng.normal(size=(B, D)).astype(np.float32)})


POLICY = {"w": jnp.float32(0.5), "std": jnp.float32(0.3)}
CRITIC = {"c": jnp.asarray([1.0, 2.0])}
TARGET = {"c": jnp.asarray([0.5, -1.0])}


def _expected_sample(observation, key):
  mean, std = 0.5 * observation["x"], 0.3
  u = mean + std * np.asarray(jax.random.normal(key, mean.shape))
  log_prob = np.sum(stats.norm.logpdf(u, mean, std) + 2 * np.log(np.cosh(u)), -1)
  return np.tanh(u), log_prob


@pytest.mark.parametrize("jit", [False, True])
@pytest.mark.parametrize("alpha", [0.0, 0.2])
def test_critic_loss_with_uniform_prior(batch, alpha, jit):
  key = jax.random.PRNGKey(3)
  networks, prior = _networks(), priors.make_uniform_prior(D)
  fn = lambda *a: losses.critic_loss(*a, networks=networks, prior=prior)
  fn = jax.jit(fn) if jit else fn
  loss, stats_ = fn(CRITIC, TARGET, POLICY, (), batch, jnp.float32(alpha), key)

  next_a, next_log_prob = _expected_sample(batch.next_observation, key)
  s_next = batch.next_observation["x"].sum(-1)
  next_q = np.minimum(0.5 * s_next + next_a.sum(-1), -1.0 * s_next + next_a.sum(-1))
  kl = next_log_prob + D * np.log(2.0)
  target = batch.reward + batch.discount * (next_q - alpha * kl)
  s = batch.observation["x"].sum(-1)
  q = np.stack([1.0 * s + batch.action.sum(-1), 2.0 * s + batch.action.sum(-1)])
  expected = 0.5 * np.sum(np.mean((q - target) ** 2, axis=1))
  np.testing.assert_allclose(loss, expected, rtol=1e-5)
  np.testing.assert_allclose(stats_.target_mean, target.mean(), rtol=1e-5, atol=1e-6)


def test_critic_loss_gradient_does_not_reach_target_or_policy(batch):
  networks, prior = _networks(), priors.make_uniform_prior(D)
  grads = jax.grad(lambda t, p: losses.critic_loss(CRITIC, t, p, (), batch, jnp.float32(0.1),
                                                   jax.random.PRNGKey(0), networks=networks,
                                                   prior=prior)[0], argnums=(0, 1))(TARGET, POLICY)
  for leaf in jax.tree_util.tree_leaves(grads):
    np.testing.assert_array_equal(leaf, 0.0)


@pytest.mark.parametrize("alpha", [0.0, 0.5])
def test_policy_loss_with_uniform_prior(batch, alpha):
  key = jax.random.PRNGKey(7)
  networks, prior = _networks(), priors.make_uniform_prior(D)
  loss, stats_ = losses.policy_loss(POLICY, CRITIC, (), batch.observation, jnp.float32(alpha), key,
                                    networks=networks, prior=prior)
  a, log_prob = _expected_sample(batch.observation, key)
  s = batch.observation["x"].sum(-1)
  q = np.minimum(1.0 * s + a.sum(-1), 2.0 * s + a.sum(-1))
  expected = np.mean(alpha * (log_prob + D * np.log(2.0)) - q)
  np.testing.assert_allclose(loss, expected, rtol=1e-5)
  np.testing.assert_allclose(stats_.entropy_estimate, -log_prob.mean(), rtol=1e-5)


def test_policy_gradient_matches_finite_differences(batch):
  networks, prior = _networks(), priors.make_uniform_prior(D)
  f = lambda w: losses.policy_loss({"w": w, "std": POLICY["std"]}, CRITIC, (), batch.observation,
                                   jnp.float32(0.3), jax.random.PRNGKey(2), networks=networks,
                                   prior=prior)[0]
  eps = 1e-2
  numeric = (f(jnp.float32(0.5 + eps)) - f(jnp.float32(0.5 - eps))) / (2 * eps)
  np.testing.assert_allclose(jax.grad(f)(jnp.float32(0.5)), numeric, rtol=2e-2)


def test_uniform_kl_estimator_is_unbiased_against_quadrature():
  """E_π[log π(a) + d log 2] = KL(π ‖ U[-1,1]^d): Monte-Carlo mean vs 1-D quadrature (d = 1)."""
  mean, std = 0.7, 0.4
  gaussian = distributions.GaussianParams(jnp.full((200_000, 1), mean), jnp.full((200_000, 1), std))
  u = distributions.sample_pre_tanh(gaussian, jax.random.PRNGKey(0))
  log_prob = distributions.tanh_gaussian_log_prob(gaussian, u)
  estimate = jnp.mean(priors.make_uniform_prior(1).kl((), None, gaussian, u, log_prob))
  integrand = lambda x: stats.norm.pdf(x, mean, std) * (
      stats.norm.logpdf(x, mean, std) + 2 * np.log(np.cosh(x)) + np.log(2.0))
  reference = integrate.quad(integrand, mean - 10 * std, mean + 10 * std)[0]
  np.testing.assert_allclose(estimate, reference, atol=5e-3)


def test_fixed_prior_kl_is_zero_for_identical_policy_and_positive_otherwise():
  from priorax.networks import policies
  network = policies.make_gaussian_policy(D, (8,), layer_norm=False)
  observation = {"x": np.random.default_rng(0).normal(size=(B, 3)).astype(np.float32)}
  params = network.init(jax.random.PRNGKey(0), observation)
  prior = priors.make_fixed_prior(params, action_size=D, hidden_sizes=(8,), observation_keys=None,
                                  layer_norm=False, min_scale=1e-3)
  same = network.apply(params, observation)
  np.testing.assert_allclose(prior.kl(params, observation, same, None, None), 0.0, atol=1e-6)
  shifted = distributions.GaussianParams(same.mean + 0.5, same.std)
  expected = 0.5 * np.sum((0.5 / np.asarray(same.std)) ** 2, -1)
  np.testing.assert_allclose(prior.kl(params, observation, shifted, None, None), expected,
                             rtol=1e-5)


@pytest.mark.parametrize("kl, sign", [(2.0, 1.0), (0.5, -1.0)])
def test_alpha_loss_gradient_raises_alpha_when_kl_exceeds_target(kl, sign):
  grad = jax.grad(losses.alpha_loss)(jnp.float32(0.0), jnp.float32(kl), jnp.float32(1.0))
  # Gradient descent moves log α by −grad: up when KL > target.
  assert np.sign(-grad) == sign
  np.testing.assert_allclose(grad, 1.0 - kl)


def test_critic_loss_rejects_wrong_ranks(batch):
  bad = batch._replace(reward=batch.reward[:, None])
  with pytest.raises(AssertionError):
    losses.critic_loss(CRITIC, TARGET, POLICY, (), bad, jnp.float32(0.1), jax.random.PRNGKey(0),
                       networks=_networks(), prior=priors.make_uniform_prior(D))


# The learned prior's distillation loss. Stand-in π0(.|s_D) = N(v·x, σ0²) reads only "x" of an
# observation that also holds a "goal"; its KL is the closed form of `priors.base`.
PRIOR = {"v": jnp.float32(0.2), "std": jnp.float32(0.6)}


def _stand_in_learned_prior():
  def apply(params, observation):
    x = observation["x"]
    return distributions.GaussianParams(x * params["v"], jnp.broadcast_to(params["std"], x.shape))

  return priors.Prior(name="learned", params=PRIOR, kl=priors_base.closed_form_gaussian_kl(apply),
                      trainable=True)


def _expected_distillation_kl(x):
  """Σ_d [log(σ0/σ) + (σ² + (w x − v x)²) / (2σ0²) − ½] with w = 0.5, σ = 0.3, v = 0.2, σ0 = 0.6."""
  return np.sum(np.log(0.6 / 0.3) + (0.3 ** 2 + ((0.5 - 0.2) * x) ** 2) / (2 * 0.6 ** 2) - 0.5, -1)


@pytest.mark.parametrize("jit", [False, True])
def test_prior_loss_is_the_closed_form_distillation_kl(batch, jit):
  networks, prior = _networks(), _stand_in_learned_prior()
  fn = lambda *a: losses.prior_loss(*a, networks=networks, prior=prior)
  fn = jax.jit(fn) if jit else fn
  observation = dict(batch.observation, goal=np.ones((B, 3), np.float32))
  loss, stats_ = fn(PRIOR, POLICY, observation, jax.random.PRNGKey(0))
  expected = np.mean(_expected_distillation_kl(batch.observation["x"]))
  np.testing.assert_allclose(loss, expected, rtol=1e-5)
  np.testing.assert_allclose(stats_.kl_mean, expected, rtol=1e-5)


def test_prior_loss_gradient_reaches_only_the_prior(batch):
  """∂L/∂v = E_B Σ_d −(w − v) x² / σ0² analytically; ∂L/∂θ = 0 (π is held fixed)."""
  networks, prior = _networks(), _stand_in_learned_prior()
  prior_grads, policy_grads = jax.grad(
      lambda phi, theta: losses.prior_loss(phi, theta, batch.observation, jax.random.PRNGKey(0),
                                           networks=networks, prior=prior)[0],
      argnums=(0, 1))(PRIOR, POLICY)
  x = batch.observation["x"]
  np.testing.assert_allclose(prior_grads["v"],
                             np.mean(np.sum(-(0.5 - 0.2) * x ** 2 / 0.6 ** 2, -1)), rtol=1e-5)
  assert np.abs(prior_grads["std"]) > 0
  for leaf in jax.tree_util.tree_leaves(policy_grads):
    np.testing.assert_array_equal(leaf, 0.0)


def test_policy_loss_kl_towards_the_learned_prior(batch):
  """The policy's regulariser is the same closed-form KL (the prior's params enter as constants:
  the learner differentiates θ only, see test_learning's update test)."""
  networks, prior = _networks(), _stand_in_learned_prior()
  _, stats_ = losses.policy_loss(POLICY, CRITIC, PRIOR, batch.observation, jnp.float32(0.5),
                                 jax.random.PRNGKey(7), networks=networks, prior=prior)
  np.testing.assert_allclose(stats_.kl_mean,
                             np.mean(_expected_distillation_kl(batch.observation["x"])), rtol=1e-5)


def _asymmetric_batch():
  """64 states: 4 proprioceptive values × 16 goals, all combinations (a deterministic grid, so a
  prior that sees only "proprio" cannot tell the goals apart, however large its network)."""
  rng = np.random.default_rng(0)
  proprio = rng.normal(size=(4, 3)).astype(np.float32)
  goals = np.stack(np.meshgrid(np.linspace(-1, 1, 4), np.linspace(-1, 1, 4)), -1).reshape(16, 2)
  return {"proprio": np.repeat(proprio, 16, axis=0),
          "goal": np.tile(goals, (4, 1)).astype(np.float32)}


def _goal_directed_networks():
  """π(.|s) = N(goal + ½ proprio[:2], 0.3²): it depends on both keys."""

  def policy_apply(params, observation):
    del params
    mean = observation["goal"] + 0.5 * observation["proprio"][:, :2]
    return distributions.GaussianParams(mean, jnp.full_like(mean, 0.3))

  return networks_lib.KLSVG0Networks(policy_init=None, policy_apply=policy_apply, critic_init=None,
                                     critic_apply=None, action_size=D)


def _blind_kl_lower_bound(observation):
  """min over π0(.|proprio) of E_B KL(π ‖ π0): per proprioceptive value, π0 is the Gaussian
  moment-matched to the mixture of the π's it cannot tell apart (the M-projection)."""
  mean = observation["goal"] + 0.5 * observation["proprio"][:, :2]
  kls = []
  for group in mean.reshape(4, 16, D):
    var0 = 0.3 ** 2 + group.var(axis=0)
    kls.append(np.sum(np.log(np.sqrt(var0) / 0.3) + (0.3 ** 2 + (group - group.mean(0)) ** 2)
                      / (2 * var0) - 0.5, -1))
  return float(np.mean(kls))


def _distill(keys, steps=1500):
  """Adam on the prior alone, `steps` times on one fixed batch; returns E_B KL(π ‖ π0) after."""
  observation = _asymmetric_batch()
  spec = {k: jax.ShapeDtypeStruct(v.shape[1:], v.dtype) for k, v in observation.items()}
  prior = priors.make_learned_prior(spec, action_size=D, hidden_sizes=(64, 64),
                                    observation_keys=keys, layer_norm=False, min_scale=1e-3)
  networks, optimizer = _goal_directed_networks(), optax.adam(3e-3)
  grad = jax.grad(lambda phi: losses.prior_loss(phi, {}, observation, jax.random.PRNGKey(0),
                                                networks=networks, prior=prior)[0])

  def step(carry, _):
    params, opt_state = carry
    updates, opt_state = optimizer.update(grad(params), opt_state)
    return (optax.apply_updates(params, updates), opt_state), None

  params = prior.init(jax.random.PRNGKey(1))
  (params, _), _ = jax.lax.scan(step, (params, optimizer.init(params)), None, length=steps)
  loss, _ = losses.prior_loss(params, {}, observation, jax.random.PRNGKey(0), networks=networks,
                              prior=prior)
  return float(loss), observation


def test_distillation_collapses_onto_the_policy_only_when_the_prior_sees_everything():
  """The asymmetry (Galashov et al. 2019, §3): distilled on the same fixed batch, a π0 seeing every
  key the policy reads approaches KL = 0; denied the goal it stays at the irreducible KL of the
  goals it cannot see."""
  full_kl, _ = _distill(("proprio", "goal"))
  blind_kl, observation = _distill(("proprio",))
  bound = _blind_kl_lower_bound(observation)
  assert full_kl < 0.05, full_kl
  assert blind_kl >= bound - 1e-3, (blind_kl, bound)
  assert blind_kl < 1.05 * bound, (blind_kl, bound)  # The blind prior did learn what it could.
  assert blind_kl > 10 * full_kl and bound > 1.0, (blind_kl, full_kl, bound)
