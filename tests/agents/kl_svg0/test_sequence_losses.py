"""The Retrace sequence losses of `kl_svg0` against float64 numpy references.

Stand-in networks with closed-form outputs (as in test_losses.py): π(.|x) = N(w·x, σ²) per action
dimension, Q_i(x, a) = c_i·Σx + Σa, and a stand-in prior π0(.|x) = N(v·x, σ0²).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import rlax
from scipy import stats

from priorax import priors
from priorax.agents.kl_svg0 import networks as networks_lib
from priorax.agents.kl_svg0 import sequence_losses
from priorax.networks import distributions
from priorax.priors import base as priors_base
from priorax.replay.types import Step

B, N, D, K = 3, 6, 2, 4
GAMMA = 0.9


def _policy_apply(params, observation):
  x = observation["x"]
  return distributions.GaussianParams(x * params["w"], jnp.broadcast_to(params["std"], x.shape))


def _networks():
  def critic_apply(params, observation, action):
    return params["c"][:, None] * jnp.sum(observation["x"], -1)[None] + jnp.sum(action, -1)[None]

  return networks_lib.KLSVG0Networks(policy_init=None, policy_apply=_policy_apply,
                                     critic_init=None, critic_apply=critic_apply, action_size=D)


POLICY = {"w": jnp.float32(0.5), "std": jnp.float32(0.3)}
TARGET_POLICY = {"w": jnp.float32(0.4), "std": jnp.float32(0.5)}
CRITIC = {"c": jnp.asarray([1.0, 2.0])}
TARGET_CRITIC = {"c": jnp.asarray([0.5, -1.0])}
PRIOR = {"w": jnp.float32(-0.2), "std": jnp.float32(0.7)}
FIXED_PRIOR = priors_base.Prior("fixed", params=PRIOR,
                                kl=priors_base.closed_form_gaussian_kl(_policy_apply))


def numpy_retrace(r, discount, q, v, log_rho, valid, lambda_):
  """Q_ret_t = r_t + γ_t (V_{t+1} + c_{t+1} (Q_ret_{t+1} − Q_{t+1})), c = λ min(1, ρ), with the
  trace cut after the sequence's last transition and before every invalid one; float64."""
  r, discount, q, v, log_rho = (np.asarray(a, np.float64) for a in (r, discount, q, v, log_rho))
  n = len(r)
  q_ret = np.zeros(n - 1)
  for t in reversed(range(n - 1)):
    q_ret[t] = r[t] + discount[t] * v[t + 1]
    if t + 1 < n - 1 and valid[t + 1]:
      c = lambda_ * min(1.0, np.exp(log_rho[t + 1]))
      q_ret[t] += discount[t] * c * (q_ret[t + 1] - q[t + 1])
  return q_ret


def _random_sequence(rng, valid):
  return (rng.normal(size=N), GAMMA * rng.choice([1.0, 0.0], size=N, p=[0.8, 0.2]),
          rng.normal(size=N), rng.normal(size=N), rng.normal(scale=2.0, size=N),
          np.asarray(valid, bool))


VALIDITY = {
    "all_valid": [1, 1, 1, 1, 1, 0],
    "episode_start_inside": [1, 1, 0, 1, 1, 0],  # Step 3 starts a new episode.
    "padding_at_end": [1, 1, 1, 0, 0, 0],
}


@pytest.mark.parametrize("jit", [False, True])
@pytest.mark.parametrize("lambda_", [1.0, 0.6])
@pytest.mark.parametrize("valid", VALIDITY.values(), ids=VALIDITY.keys())
def test_retrace_targets_match_float64_recursion(valid, lambda_, jit):
  rng = np.random.default_rng(len(valid) + int(10 * lambda_))
  r, discount, q, v, log_rho, valid = _random_sequence(rng, valid)
  fn = jax.jit(sequence_losses.retrace_targets) if jit else sequence_losses.retrace_targets
  got = fn(*(jnp.asarray(a, jnp.float32) for a in (r, discount, q, v, log_rho)),
           jnp.asarray(valid), lambda_)
  np.testing.assert_allclose(got, numpy_retrace(r, discount, q, v, log_rho, valid, lambda_),
                             rtol=1e-5, atol=1e-5)


def test_retrace_targets_reduce_to_rlax_when_every_transition_is_valid():
  r, discount, q, v, log_rho, valid = _random_sequence(np.random.default_rng(1),
                                                       VALIDITY["all_valid"])
  f32 = lambda a: jnp.asarray(a, jnp.float32)
  got = sequence_losses.retrace_targets(f32(r), f32(discount), f32(q), f32(v), f32(log_rho),
                                        jnp.asarray(valid), 0.9)
  # rlax returns target − q_tm1; with q_tm1 = 0 that is the target.
  expected = rlax.retrace_continuous(jnp.zeros(N - 1), f32(q[1:N - 1]), f32(v[1:]), f32(r[:-1]),
                                     f32(discount[:-1]), f32(log_rho[1:N - 1]), 0.9)
  np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


def test_traces_are_truncated_at_rho_one_and_cut_by_lambda_zero():
  r, discount, q, v, _, valid = _random_sequence(np.random.default_rng(2), VALIDITY["all_valid"])
  f32 = lambda a: jnp.asarray(a, jnp.float32)
  big = sequence_losses.retrace_targets(f32(r), f32(discount), f32(q), f32(v), jnp.full(N, 5.0),
                                        jnp.asarray(valid), 1.0)
  at_one = sequence_losses.retrace_targets(f32(r), f32(discount), f32(q), f32(v), jnp.zeros(N),
                                           jnp.asarray(valid), 1.0)
  np.testing.assert_allclose(big, at_one, rtol=1e-6)  # c = min(1, ρ) = 1 for any ρ ≥ 1.
  one_step = sequence_losses.retrace_targets(f32(r), f32(discount), f32(q), f32(v), jnp.zeros(N),
                                             jnp.asarray(valid), 0.0)
  np.testing.assert_allclose(one_step, r[:-1] + discount[:-1] * v[1:], rtol=1e-5, atol=1e-6)


def _steps(seed, padding_from=None, start_at=None):
  """A batch of sequences; sequence 0 is padded from step `padding_from`, sequence 1 starts a new
  episode at step `start_at`."""
  rng = np.random.default_rng(seed)
  u = rng.normal(size=(B, N, D)).astype(np.float32)
  mask = np.ones((B, N), np.float32)
  start = np.zeros((B, N), bool)
  start[:, 0] = True
  if padding_from is not None:
    mask[0, padding_from:] = 0.0
  if start_at is not None:
    start[1, start_at] = True
  return Step(observation={"x": rng.normal(size=(B, N, D)).astype(np.float32)},
              action=np.tanh(u), reward=rng.normal(size=(B, N)).astype(np.float32),
              discount=rng.choice([1.0, 0.0], size=(B, N), p=[0.9, 0.1]).astype(np.float32),
              start_of_episode=start, mask=mask,
              extras={sequence_losses.EXTRAS_LOG_PROB: rng.normal(size=(B, N)).astype(np.float32),
                      sequence_losses.EXTRAS_PRE_TANH_ACTION: u})


def _normal_samples(key, shape):
  return np.asarray(jax.random.normal(key, shape), np.float64)


def _tanh_gaussian_log_prob(u, mean, std):
  return np.sum(stats.norm.logpdf(u, mean, std) + 2 * np.log(np.cosh(u)), -1)


def _numpy_kl(prior_name, x, u0, log_prob0):
  """The prior's KL estimate at the online policy's first sample, float64."""
  if prior_name == "uniform":
    return log_prob0 + D * np.log(2.0)
  mp, sp = 0.5 * x, 0.3
  mq, sq = float(PRIOR["w"]) * x, float(PRIOR["std"])
  return np.sum(np.log(sq / sp) + (sp ** 2 + (mp - mq) ** 2) / (2 * sq ** 2) - 0.5, -1)


def _prior(name):
  return priors.make_uniform_prior(D) if name == "uniform" else FIXED_PRIOR


def _prior_params(name):
  return () if name == "uniform" else PRIOR


@pytest.mark.parametrize("prior_name", ["uniform", "fixed"])
@pytest.mark.parametrize("alpha", [0.0, 0.3])
def test_critic_loss_matches_numpy_value_target_and_retrace(prior_name, alpha):
  steps = _steps(0, padding_from=4, start_at=3)
  key = jax.random.PRNGKey(5)
  loss, stats_ = sequence_losses.retrace_critic_loss(
      CRITIC, TARGET_CRITIC, TARGET_POLICY, POLICY, _prior_params(prior_name), steps,
      jnp.float32(alpha), key, networks=_networks(), prior=_prior(prior_name), discount=GAMMA,
      lambda_=1.0, num_action_samples=K)

  # V(x) = mean_k min_i Q'_i(x, a_k) − α KL(π ‖ π0'), a_k ~ π' (same keys as the loss).
  target_key, online_key = jax.random.split(key)
  x = np.asarray(steps.observation["x"], np.float64).reshape(B * N, D)
  u_target = 0.4 * x + 0.5 * _normal_samples(target_key, (K, B * N, D))
  u_online = 0.5 * x + 0.3 * _normal_samples(online_key, (1, B * N, D))[0]
  kl = _numpy_kl(prior_name, x, u_online, _tanh_gaussian_log_prob(u_online, 0.5 * x, 0.3))
  s = x.sum(-1)
  a_sum = np.tanh(u_target).sum(-1)
  v = np.mean(np.minimum(0.5 * s + a_sum, -1.0 * s + a_sum), axis=0) - alpha * kl
  u_b = np.asarray(steps.extras[sequence_losses.EXTRAS_PRE_TANH_ACTION], np.float64).reshape(-1, D)
  log_rho = (_tanh_gaussian_log_prob(u_b, 0.4 * x, 0.5)
             - steps.extras[sequence_losses.EXTRAS_LOG_PROB].reshape(-1))
  action_sum = np.asarray(steps.action, np.float64).reshape(-1, D).sum(-1)
  q_target = np.minimum(0.5 * s + action_sum, -1.0 * s + action_sum)
  valid = (steps.mask[:, 1:] > 0) & ~steps.start_of_episode[:, 1:]
  valid = np.concatenate([valid, np.zeros((B, 1), bool)], 1)
  assert not valid[0, 3] and not valid[1, 2]  # Padding after x_4, an episode start at step 3.
  q_ret = np.stack([numpy_retrace(steps.reward[b], GAMMA * steps.discount[b],
                                  q_target.reshape(B, N)[b], v.reshape(B, N)[b],
                                  log_rho.reshape(B, N)[b], valid[b], 1.0) for b in range(B)])
  q = np.stack([c * s + action_sum for c in (1.0, 2.0)]).reshape(2, B, N)[:, :, :-1]
  w = valid[:, :-1]
  expected = 0.5 * np.sum([np.sum(w * (q_ret - q[i]) ** 2) / w.sum() for i in range(2)])
  np.testing.assert_allclose(loss, expected, rtol=1e-4)
  np.testing.assert_allclose(stats_.target_mean, np.sum(w * q_ret) / w.sum(), rtol=1e-4,
                             atol=1e-5)
  np.testing.assert_allclose(stats_.valid_fraction, w.mean(), rtol=1e-6)


def test_critic_loss_ignores_what_masked_steps_hold():
  steps = _steps(1, padding_from=3, start_at=4)
  garbage = steps._replace(
      reward=np.where(steps.mask > 0, steps.reward, 1e3).astype(np.float32),
      observation={"x": np.where(steps.mask[..., None] > 0, steps.observation["x"], 50.0
                                 ).astype(np.float32)})
  args = (CRITIC, TARGET_CRITIC, TARGET_POLICY, POLICY, ())
  kwargs = dict(networks=_networks(), prior=priors.make_uniform_prior(D), discount=GAMMA,
                lambda_=1.0, num_action_samples=K)
  key, alpha = jax.random.PRNGKey(0), jnp.float32(0.1)
  clean, _ = sequence_losses.retrace_critic_loss(*args, steps, alpha, key, **kwargs)
  dirty, _ = sequence_losses.retrace_critic_loss(*args, garbage, alpha, key, **kwargs)
  np.testing.assert_allclose(clean, dirty, rtol=1e-6)


@pytest.mark.parametrize("prior_name", ["uniform", "fixed"])
def test_policy_loss_matches_numpy_on_real_states(prior_name):
  steps = _steps(2, padding_from=2)
  key, alpha, entropy_cost = jax.random.PRNGKey(9), 0.2, 0.05
  loss, stats_ = sequence_losses.sequence_policy_loss(
      POLICY, TARGET_CRITIC, _prior_params(prior_name), steps, jnp.float32(alpha), key,
      networks=_networks(), prior=_prior(prior_name), entropy_cost=entropy_cost,
      num_action_samples=K)
  x = np.asarray(steps.observation["x"], np.float64).reshape(B * N, D)
  u = 0.5 * x + 0.3 * _normal_samples(key, (K, B * N, D))
  log_prob = _tanh_gaussian_log_prob(u, 0.5 * x, 0.3)
  s, a_sum = x.sum(-1), np.tanh(u).sum(-1)
  q = np.mean(np.minimum(0.5 * s + a_sum, -1.0 * s + a_sum), axis=0)
  kl = _numpy_kl(prior_name, x, u[0], log_prob[0])
  per_state = alpha * kl - q - entropy_cost * (-log_prob.mean(0))
  w = steps.mask.reshape(-1)
  np.testing.assert_allclose(loss, np.sum(w * per_state) / w.sum(), rtol=1e-4, atol=1e-6)
  np.testing.assert_allclose(stats_.kl_mean, np.sum(w * kl) / w.sum(), rtol=1e-4, atol=1e-6)


def test_critic_loss_reaches_only_the_online_critic_and_policy_loss_only_the_policy():
  steps = _steps(3, padding_from=4)
  networks, key, alpha = _networks(), jax.random.PRNGKey(0), jnp.float32(0.3)
  critic_grads = jax.grad(
      lambda c, tc, tp, p, pr: sequence_losses.retrace_critic_loss(
          c, tc, tp, p, pr, steps, alpha, key, networks=networks, prior=FIXED_PRIOR,
          discount=GAMMA, lambda_=1.0, num_action_samples=K)[0],
      argnums=(0, 1, 2, 3, 4))(CRITIC, TARGET_CRITIC, TARGET_POLICY, POLICY, PRIOR)
  assert np.any(np.asarray(critic_grads[0]["c"]) != 0.0)
  for grads in critic_grads[1:]:  # Target critic, target policy, policy, target prior.
    for leaf in jax.tree_util.tree_leaves(grads):
      np.testing.assert_array_equal(leaf, 0.0)

  policy_grads = jax.grad(
      lambda p, tc, pr: sequence_losses.sequence_policy_loss(
          p, tc, pr, steps, alpha, key, networks=networks, prior=FIXED_PRIOR, entropy_cost=0.1,
          num_action_samples=K)[0], argnums=(0, 1, 2))(POLICY, TARGET_CRITIC, PRIOR)
  assert all(np.asarray(leaf) != 0.0 for leaf in jax.tree_util.tree_leaves(policy_grads[0]))
  for grads in policy_grads[1:]:  # Target critic, target prior.
    for leaf in jax.tree_util.tree_leaves(grads):
      np.testing.assert_array_equal(leaf, 0.0)


def test_prior_loss_distils_on_real_states_only_and_holds_the_policy_fixed():
  steps = _steps(4, padding_from=3)
  networks = _networks()
  loss_fn = lambda pr, p: sequence_losses.sequence_prior_loss(
      pr, p, steps, jax.random.PRNGKey(0), networks=networks, prior=FIXED_PRIOR)[0]
  x = np.asarray(steps.observation["x"], np.float64).reshape(B * N, D)
  kl = _numpy_kl("fixed", x, None, None)
  w = steps.mask.reshape(-1)
  np.testing.assert_allclose(loss_fn(PRIOR, POLICY), np.sum(w * kl) / w.sum(), rtol=1e-5)
  prior_grads, policy_grads = jax.grad(loss_fn, argnums=(0, 1))(PRIOR, POLICY)
  assert all(np.asarray(leaf) != 0.0 for leaf in jax.tree_util.tree_leaves(prior_grads))
  for leaf in jax.tree_util.tree_leaves(policy_grads):
    np.testing.assert_array_equal(leaf, 0.0)


def test_valid_transitions_mask_padding_and_episode_starts():
  steps = _steps(5, padding_from=4, start_at=2)
  valid = np.asarray(sequence_losses.valid_transitions(steps))
  np.testing.assert_array_equal(valid[0], [1, 1, 1, 0, 0, 0])  # x_2 → x_3 is the last real one.
  np.testing.assert_array_equal(valid[1], [1, 0, 1, 1, 1, 0])  # No transition 1 → 2 (restart).
  np.testing.assert_array_equal(valid[2], [1, 1, 1, 1, 1, 0])
