"""Tests for priorax.stream.soft_reset: the OU step, the optax wrapper, and drift estimation."""

from absl.testing import parameterized
import haiku as hk
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from priorax.stream import soft_reset as sr
from priorax.stream import streams


class OUStepTest(parameterized.TestCase):

  def test_ou_drift_hand_computed(self):
    out = sr.ou_drift(jnp.array([2.0, -1.0]), jnp.array([0.0, 1.0]), jnp.asarray(0.6),
                      jnp.asarray(0.5), jnp.array([1.0, -2.0]))
    # 0.6 θ + 0.4 μ₀ + 0.8 · 0.5 · ε.
    np.testing.assert_allclose(out, [1.2 + 0.4, -0.6 + 0.4 - 0.8], rtol=1e-6)

  @parameterized.named_parameters(("layer", sr.PER_LAYER), ("parameter", sr.PER_PARAMETER))
  def test_zero_gradient_keeps_stationary_mean_and_variance(self, granularity):
    # θ ~ N(μ₀, s₀²) is stationary under the drift: with zero gradients, 100 steps of the wrapper at
    # γ = 0.8 (a strong drift) must leave the parameters' mean and spread where they were.
    mu0 = {"w": jnp.full((200, 100), 0.5)}
    init = {"w": mu0["w"] + 0.2 * jax.random.normal(jax.random.PRNGKey(0), (200, 100))}
    config = sr.SoftResetConfig(granularity=granularity, initial_gamma=0.8, learn_drift=False,
                                prior_std=0.2, perturb=True)
    opt = sr.soft_reset(optax.sgd(0.1), mu0, config)
    state = opt.init(init)
    zeros = jax.tree_util.tree_map(jnp.zeros_like, init)
    step = jax.jit(opt.update)
    params = init
    for _ in range(100):
      updates, state = step(zeros, state, params)
      params = optax.apply_updates(params, updates)
    self.assertAlmostEqual(float(jnp.mean(params["w"])), 0.5, delta=0.003)
    self.assertAlmostEqual(float(jnp.std(params["w"])), 0.2, delta=0.004)
    # It moved: the parameters are nearly independent of where they started (corr = γ¹⁰⁰ ≈ 0).
    corr = np.corrcoef(np.ravel(params["w"]), np.ravel(init["w"]))[0, 1]
    self.assertLess(abs(corr), 0.05)
    np.testing.assert_allclose(sr.gammas(state)["w"], 0.8, rtol=1e-6)

  def test_zero_gradient_without_noise_contracts_to_mean(self):
    mu0 = {"w": jnp.zeros(3)}
    opt = sr.soft_reset(optax.sgd(0.1), mu0, sr.SoftResetConfig(initial_gamma=0.5,
                                                                learn_drift=False))
    params = {"w": jnp.array([4.0, -2.0, 1.0])}
    updates, _ = opt.update({"w": jnp.zeros(3)}, opt.init(params), params)
    np.testing.assert_allclose(optax.apply_updates(params, updates)["w"], [2.0, -1.0, 0.5])

  def test_gamma_one_limit_is_the_inner_optimiser(self):
    # With γ pinned at ~1 the wrapper is the inner optimiser: compare against plain Adam.
    params = {"w": jnp.array([1.0, -2.0]), "b": jnp.array(0.5)}
    grads = {"w": jnp.array([0.3, 0.1]), "b": jnp.array(-0.2)}
    config = sr.SoftResetConfig(initial_gamma=1.0 - 1e-7, learn_drift=False, lr_boost=1.0)
    wrapped = sr.soft_reset(optax.adam(0.1), params, config)
    plain = optax.adam(0.1)
    u1, _ = wrapped.update(grads, wrapped.init(params), params)
    u2, _ = plain.update(grads, plain.init(params), params)
    jax.tree_util.tree_map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5), u1, u2)

  def test_needs_params(self):
    opt = sr.soft_reset(optax.sgd(0.1), {"w": jnp.zeros(2)})
    with self.assertRaisesRegex(ValueError, "needs params"):
      opt.update({"w": jnp.zeros(2)}, opt.init({"w": jnp.zeros(2)}))

  @parameterized.named_parameters(
      ("granularity", dict(granularity="net"), "granularity"),
      ("gamma", dict(initial_gamma=1.0), "initial_gamma"),
      ("boost", dict(lr_boost=0.5), "lr_boost"),
      ("range", dict(min_log_delta=0.0, max_log_delta=-1.0), "min_log_delta"))
  def test_config_rejects(self, kwargs, message):
    with self.assertRaisesRegex(ValueError, message):
      sr.SoftResetConfig(**kwargs)


class HaikuCriticTest(parameterized.TestCase):

  def test_wraps_the_optimiser_of_a_twin_haiku_critic(self):
    # The RL use: Q(s, a) twin critics with nested haiku parameters, regressed on TD-like targets
    # under jit. The wrapper must train them as the inner optimiser does, keeping the tree.
    def critic(obs, act):
      x = jnp.concatenate([obs, act], -1)
      return jnp.stack([hk.nets.MLP([32, 1], name=f"q{i}")(x)[..., 0] for i in range(2)], -1)

    net = hk.without_apply_rng(hk.transform(critic))
    rng = np.random.default_rng(0)
    obs, act = jnp.asarray(rng.normal(size=(64, 5)), jnp.float32), jnp.asarray(
        rng.normal(size=(64, 2)), jnp.float32)
    target = jnp.sin(obs[:, :1]) + act[:, :1]
    params = net.init(jax.random.PRNGKey(0), obs, act)
    opt = sr.soft_reset(optax.adam(3e-3), params)
    state = opt.init(params)

    @jax.jit
    def step(params, state):
      loss, grads = jax.value_and_grad(
          lambda p: jnp.mean((net.apply(p, obs, act) - target)**2))(params)
      updates, state = opt.update(grads, state, params)
      return optax.apply_updates(params, updates), state, loss

    losses = []
    for _ in range(300):
      params, state, loss = step(params, state)
      losses.append(float(loss))
    self.assertEqual(jax.tree_util.tree_structure(params),
                     jax.tree_util.tree_structure(net.init(jax.random.PRNGKey(0), obs, act)))
    self.assertLess(losses[-1], 0.2 * losses[0])
    for g in jax.tree_util.tree_leaves(sr.gammas(state)):
      self.assertTrue(bool(jnp.all((g > 0.98) & (g < 1.0))))


class DriftEstimationTest(parameterized.TestCase):

  def test_gamma_goes_to_one_on_stationary_stream(self):
    x, y = streams.shifting_classification(0, steps=1500, shift_every=None)
    acc, gamma = streams.train_online_classifier(
        lambda p: sr.soft_reset(optax.adam(1e-3), p, sr.SoftResetConfig(initial_gamma=0.995)), x, y)
    self.assertLess(gamma[0], 0.996)
    self.assertGreater(gamma[-100:].mean(), 0.999)
    self.assertGreater(acc[-200:].mean(), 0.8)

  def test_partial_reset_and_faster_recovery_after_abrupt_shift(self):
    shift = 1500
    adam_steps, reset_steps = [], []
    for seed in range(2):
      x, y = streams.shifting_classification(seed, steps=2 * shift, shift_every=shift)
      adam_acc, _ = streams.train_online_classifier(lambda p: optax.adam(1e-3), x, y, seed)
      acc, gamma = streams.train_online_classifier(lambda p: sr.soft_reset(optax.adam(1e-3), p), x, y, seed)
      before, after = gamma[shift - 100:shift].mean(), gamma[shift:shift + 100].min()
      # The drift reacts to the shift (γ drops) but stays a soft reset (γ well above 0).
      self.assertLess(after, before - 2e-3)
      self.assertGreater(after, 0.98)
      self.assertGreater(gamma[-100:].mean(), after)
      adam_steps.append(streams.recovery_steps(adam_acc, shift))
      reset_steps.append(streams.recovery_steps(acc, shift))
    self.assertLess(np.mean(reset_steps), 0.9 * np.mean(adam_steps), (reset_steps, adam_steps))


if __name__ == "__main__":
  pytest.main([__file__])
