"""Tests for priorax.stream.datasets: offline sources, splits and streams."""

from absl.testing import parameterized
import numpy as np
import pytest

from priorax.stream import datasets


class SourcesTest(parameterized.TestCase):

  def test_digits_are_bundled(self):
    x, y = datasets.digits_images()
    self.assertEqual(x.shape, (1797, 16, 16))
    self.assertEqual(set(np.unique(y)), set(range(10)))
    self.assertLessEqual(float(x.max()), 1.0)

  def test_fonts_are_bundled(self):
    self.assertGreaterEqual(len(datasets.font_paths()), 3)

  @parameterized.named_parameters(
      ("glyphs", datasets.glyph_images, 26),
      ("shapes", datasets.shape_images, len(datasets.SHAPES)),
      ("textures", datasets.texture_images, 8))
  def test_procedural_sources(self, fn, classes):
    x, y = fn(300, 0)
    self.assertEqual(x.shape, (300, 16, 16))
    self.assertEqual(x.dtype, np.float32)
    self.assertTrue(0.0 <= x.min() and x.max() <= 1.0)
    self.assertTrue(set(np.unique(y)) <= set(range(classes)))
    self.assertGreater(len(np.unique(y)), classes // 2)
    # Deterministic in the seed, different across seeds.
    np.testing.assert_array_equal(fn(20, 5)[0], fn(20, 5)[0])
    self.assertFalse(np.array_equal(fn(20, 5)[0], fn(20, 6)[0]))

  @parameterized.named_parameters(("shapes", datasets.shape_images),
                                  ("textures", datasets.texture_images))
  def test_classes_are_separable_by_nearest_class_mean(self, fn):
    # The labels carry signal: a nearest-class-mean classifier beats chance by a wide margin.
    x, y = fn(2000, 1)
    x = x.reshape(len(x), -1)
    if fn is datasets.texture_images:
      x = np.abs(np.fft.fft2(x.reshape(-1, 16, 16))).reshape(len(x), -1)  # Phase-invariant.
    means = np.stack([x[:1500][y[:1500] == c].mean(0) for c in np.unique(y)])
    pred = np.argmin(((x[1500:, None] - means[None])**2).sum(-1), -1)
    chance = 1.0 / len(means)
    self.assertGreater(np.mean(pred == y[1500:]), chance + 0.3)


class TaskTest(parameterized.TestCase):

  def test_make_task_splits_are_disjoint(self):
    task = datasets.make_task("digits", 300, seed=0, num_dev=100, num_test=200)
    self.assertEqual(task.name, "digits_300")
    self.assertEqual((len(task.train.x), len(task.dev.x), len(task.test.x)), (300, 100, 200))
    flat = lambda s: {a.tobytes() for a in s.x}
    self.assertFalse(flat(task.train) & flat(task.test))

  def test_rejects_unknown_and_oversized(self):
    with self.assertRaisesRegex(ValueError, "unknown task source"):
      datasets.make_task("cifar", 10, 0)
    with self.assertRaisesRegex(ValueError, "the source has 1797"):
      datasets.make_task("digits", 5000, 0)
    with self.assertRaisesRegex(ValueError, "unknown stream"):
      datasets.make_stream("nevis")

  def test_offline_stream_spans_two_orders_of_magnitude(self):
    sizes = [n for _, n in datasets.STREAMS["offline_small"]]
    self.assertGreaterEqual(max(sizes) / min(sizes), 100)
    self.assertGreaterEqual(len({s for s, _ in datasets.STREAMS["offline_small"]}), 4)


if __name__ == "__main__":
  pytest.main([__file__])
