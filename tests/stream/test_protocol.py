"""Tests for priorax.stream.protocol: pruning, FLOPs, learners and the stream runner."""

import functools

from absl.testing import parameterized
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from priorax.stream import datasets
from priorax.stream import protocol


@functools.lru_cache(maxsize=None)
def _tiny_stream():
  return tuple(datasets.make_task(s, n, seed=i, num_dev=100, num_test=200)
               for i, (s, n) in enumerate([("shapes", 300), ("digits", 300)]))


class PruningTest(parameterized.TestCase):

  def test_removing_dead_units_keeps_the_function(self):
    net = protocol.make_network([8, 6], 3)
    x = jax.random.uniform(jax.random.PRNGKey(0), (5, 4, 4))
    params = net.init(jax.random.PRNGKey(1), x)
    params = jax.tree_util.tree_map(lambda a: a, params)
    dead = [1, 4, 6]  # Units of the first hidden layer with zero incoming weights and bias.
    w0 = params["backbone/~/linear_0"]["w"].at[:, dead].set(0.0)
    params["backbone/~/linear_0"] = {"w": w0, "b": jnp.zeros(8)}
    pruned = protocol.prune_units(params, [5, 6])
    self.assertEqual(protocol.backbone_sizes(pruned), [5, 6])
    self.assertNotIn("head", pruned)
    small = protocol.make_network([5, 6], 3)
    np.testing.assert_allclose(small.apply({**pruned, "head": params["head"]}, x),
                               net.apply(params, x), rtol=1e-5, atol=1e-6)

  def test_keeps_largest_norm_units(self):
    w = jnp.array([[3.0, 0.1, 2.0, 0.2], [0.0, 0.1, 0.0, 0.2]])
    params = {"backbone/~/linear_0": {"w": w, "b": jnp.arange(4.0)}}
    pruned = protocol.prune_units(params, [2])
    np.testing.assert_allclose(pruned["backbone/~/linear_0"]["w"], w[:, [0, 2]])
    np.testing.assert_allclose(pruned["backbone/~/linear_0"]["b"], [0.0, 2.0])

  def test_rejects_bad_keep(self):
    params = {"backbone/~/linear_0": {"w": jnp.ones((2, 3)), "b": jnp.zeros(3)}}
    with self.assertRaisesRegex(ValueError, "keep"):
      protocol.prune_units(params, [4])


class FlopsTest(parameterized.TestCase):

  def test_matmul_flops(self):
    flops = protocol.xla_flops(lambda a, b: a @ b, jnp.ones((8, 16)), jnp.ones((16, 4)))
    self.assertEqual(flops, 2 * 8 * 16 * 4)


class LearnerTest(parameterized.TestCase):

  @parameterized.named_parameters(
      ("init_from", dict(init_from="best"), "init_from"),
      ("prune_scratch", dict(init_from="scratch", prune_fraction=0.5), "pretrained"),
      ("prune_range", dict(prune_fraction=1.0), "prune_fraction"),
      ("knn_neighbours", dict(init_from="knn", knn_neighbours=0), "knn_neighbours"),
      ("lrs", dict(learning_rates=()), "learning_rates"))
  def test_config_rejects(self, kwargs, message):
    with self.assertRaisesRegex(ValueError, message):
      protocol.FinetuneConfig(**kwargs)

  def test_baselines_on_a_tiny_stream(self):
    tasks = _tiny_stream()
    common = dict(hidden_sizes=(64, 32), learning_rates=(3e-3,), max_steps=150, min_steps=150)
    results = {}
    for name in ("independent", "finetune_previous", "finetune_pruned", "finetune_knn"):
      learner = protocol.make_learner(name, **common)
      results[name] = protocol.run_stream(learner, tasks)
    for name, res in results.items():
      self.assertEqual([r.task for r in res], ["shapes_300", "digits_300"])
      # Learns: far below chance (1/6 and 1/10 correct at chance).
      self.assertLess(res[0].test_error, 0.5, name)
      self.assertLess(res[1].test_error, 0.4, name)
      summary = protocol.summarize(res)
      self.assertAlmostEqual(summary["stream_flops"], sum(r.flops for r in res))
    # Same architecture and steps: the same compute for independent and previous.
    self.assertAlmostEqual(results["independent"][1].flops, results["finetune_previous"][1].flops,
                           delta=1e-6 * results["independent"][1].flops)
    # Half the units in each hidden layer: well under the unpruned compute on the second task only.
    self.assertAlmostEqual(results["finetune_pruned"][0].flops,
                           results["finetune_previous"][0].flops, delta=1.0)
    self.assertLess(results["finetune_pruned"][1].flops, 0.7 * results["finetune_previous"][1].flops)
    # Dynamic kNN: from scratch on the first task; on the second its only stored backbone is the
    # previous one, so it trains the same network and adds the probe's compute.
    self.assertAlmostEqual(results["finetune_knn"][0].flops, results["independent"][0].flops,
                           delta=1.0)
    self.assertGreater(results["finetune_knn"][1].flops, results["finetune_previous"][1].flops)

  def test_previous_starts_from_the_last_backbone(self):
    tasks = _tiny_stream()
    learner = protocol.make_learner("finetune_previous", hidden_sizes=(16,), learning_rates=(1e-3,),
                                    max_steps=50)
    state, _ = learner.train(tasks[0], learner.init())
    start, flops = learner._start_backbone(state, tasks[1])
    np.testing.assert_array_equal(start["backbone/~/linear_0"]["w"],
                                  state.params["backbone/~/linear_0"]["w"])
    self.assertEqual(flops, 0.0)
    self.assertEqual(state.backbones, ())  # Only the kNN learner keeps a library.
    scratch = protocol.make_learner("independent", hidden_sizes=(16,))
    self.assertIsNone(scratch._start_backbone(state, tasks[1])[0])
    pruned = protocol.make_learner("finetune_pruned", hidden_sizes=(16,))
    self.assertEqual(protocol.backbone_sizes(pruned._start_backbone(state, tasks[1])[0]), [8])


def _two_class_task(seed):
  """Class c lights pixel c of a 4×4 image (plus noise); pixels 2..15 are noise only."""
  rng = np.random.default_rng(seed)

  def split(n):
    y = rng.integers(0, 2, n).astype(np.int32)
    x = rng.normal(0.0, 1.0, (n, 16)).astype(np.float32)
    x[np.arange(n), y] += 4.0
    return datasets.Split(x.reshape(n, 4, 4), y)

  return datasets.Task("two_class", 2, split(200), split(100), split(100))


def _reader_backbone(pixels):
  """One hidden layer of len(pixels) ReLU units, unit i copying pixel pixels[i] (+ a shift)."""
  w = np.zeros((16, len(pixels)), np.float32)
  w[pixels, np.arange(len(pixels))] = 1.0
  return {"backbone/~/linear_0": {"w": jnp.asarray(w), "b": jnp.full(len(pixels), 4.0)}}


class DynamicKnnTest(parameterized.TestCase):

  @parameterized.named_parameters(("good_first", 0), ("good_last", 2))
  def test_picks_the_backbone_whose_features_separate_the_task(self, good):
    task = _two_class_task(0)
    noise_a, noise_b = _reader_backbone([5, 6, 7]), _reader_backbone([8, 9, 10])
    library = [noise_a, noise_b]
    library.insert(good, _reader_backbone([0, 1, 2]))  # Reads the two class pixels.
    chosen, errors, flops = protocol.knn_select(library, task, k=5, max_reference=200)
    self.assertEqual(chosen, good)
    self.assertLess(errors[good], 0.05)
    self.assertGreater(min(e for i, e in enumerate(errors) if i != good), 0.3)
    self.assertGreater(flops, 0.0)

  def test_learner_fine_tunes_the_chosen_backbone(self):
    task = _two_class_task(1)
    learner = protocol.make_learner("finetune_knn", hidden_sizes=(3,), knn_neighbours=5)
    good = _reader_backbone([0, 1, 2])
    last = _reader_backbone([5, 6, 7])  # What finetune_previous would start from.
    state = protocol.FinetuneState({**last, "head": {}}, 2, (good, last))
    start, flops = learner._start_backbone(state, task)
    np.testing.assert_array_equal(start["backbone/~/linear_0"]["w"],
                                  good["backbone/~/linear_0"]["w"])
    self.assertGreater(flops, 0.0)
    state, _ = learner.train(task, state)
    self.assertLen(state.backbones, 3)  # The new task's backbone joins the library.

  def test_knn_error_of_a_separable_case(self):
    ref = jnp.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]])
    query = jnp.array([[1.0, 0.2], [0.2, 1.0]])
    self.assertEqual(float(protocol.knn_error(ref, jnp.array([0, 0, 1, 1]), query,
                                              jnp.array([0, 1]), k=2, num_classes=2)), 0.0)
    self.assertEqual(float(protocol.knn_error(ref, jnp.array([0, 0, 1, 1]), query,
                                              jnp.array([1, 0]), k=2, num_classes=2)), 1.0)


if __name__ == "__main__":
  pytest.main([__file__])
