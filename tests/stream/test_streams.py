"""Tests for priorax.stream.streams: stream generators and recovery metrics."""

from absl.testing import parameterized
import numpy as np
import pytest

from priorax.stream import streams


class MetricsTest(parameterized.TestCase):

  def test_recovery_steps_hand_computed(self):
    score = np.concatenate([np.ones(50), np.zeros(10), np.ones(40)])
    # Window 5: the moving average is back to 0.9 once 5 consecutive ones follow the dip, 15 steps
    # after the shift at 50.
    self.assertEqual(streams.recovery_steps(score, 50, window=5, fraction=0.9), 15)

  def test_recovery_steps_never_recovers(self):
    score = np.concatenate([np.ones(50), np.zeros(30)])
    self.assertEqual(streams.recovery_steps(score, 50, window=5), 30)

  def test_steps_to_threshold(self):
    self.assertEqual(streams.steps_to_threshold(np.array([3.0, 2.0, 0.5, 0.1]), 0.5), 2)
    self.assertEqual(streams.steps_to_threshold(np.array([3.0, 2.0]), 0.5), 2)


class GeneratorTest(parameterized.TestCase):

  def test_shifting_classification_permutes_labels_at_shifts(self):
    x, y = streams.shifting_classification(0, steps=40, shift_every=20, batch=64, classes=5)
    _, y_static = streams.shifting_classification(0, steps=40, shift_every=None, batch=64, classes=5)
    self.assertEqual(x.shape, (40, 64, 20))
    np.testing.assert_array_equal(y[:20], y_static[:20])
    self.assertGreater(np.mean(y[20:] != y_static[20:]), 0.3)
    # A relabelling: each old label maps to exactly one new one after the shift.
    pairs = set(zip(y_static[20:].ravel(), y[20:].ravel()))
    self.assertEqual(len(pairs), 5)

  def test_digits_stream_shapes_labels_and_bias_feature(self):
    x, y = streams.digits_drift_stream(0, steps=60, batch=8, abrupt_every=30)
    self.assertEqual(x.shape, (60, 8, 65))
    np.testing.assert_array_equal(x[..., -1], 1.0)
    self.assertEqual(y.shape, (60, 8))
    self.assertTrue(set(np.unique(y)) <= set(range(10)))

  def test_digits_stream_has_abrupt_label_and_gradual_feature_shifts(self):
    from sklearn.datasets import load_digits
    x, y = streams.digits_drift_stream(0, steps=90, batch=16, abrupt_every=30)
    # Same draws without an abrupt shift in range: only the labels differ.
    x_static, y_static = streams.digits_drift_stream(0, steps=90, batch=16, abrupt_every=1000)
    np.testing.assert_array_equal(x, x_static)
    np.testing.assert_array_equal(y[:30], y_static[:30])
    maps = []
    for lo in (30, 60):  # Abrupt: a new label permutation from each shift on.
      pairs = set(zip(y_static[lo:lo + 30].ravel(), y[lo:lo + 30].ravel()))
      self.assertEqual(len(pairs), len({a for a, _ in pairs}))  # A function of the old label...
      self.assertEqual(len(pairs), len({b for _, b in pairs}))  # ... and one-to-one.
      maps.append(dict(pairs))
    self.assertNotEqual(maps[0], maps[1])
    # Gradual: batch 0 holds standardised digits, the last batch the same images with their pixels
    # permuted (α = π/2), and the batches in between mix the two.
    images = load_digits().data.astype(np.float32)
    images = (images - images.mean(0)) / (images.std(0) + 1.0)
    dist = ((x[0, :, None, :64] - images[None]) ** 2).sum(-1)
    self.assertLess(float(dist.min(1).max()), 1e-6)
    sorted_last = np.sort(x[-1, :, :64], axis=-1)
    sorted_images = np.sort(images, axis=-1)
    dist = ((sorted_last[:, None] - sorted_images[None]) ** 2).sum(-1)
    self.assertLess(float(dist.min(1).max()), 1e-6)
    self.assertFalse(np.any(((x[-1, :, None, :64] - images[None]) ** 2).sum(-1) < 1e-6))

  def test_teacher_regression_is_deterministic(self):
    x1, y1 = streams.teacher_regression(3, 100)
    x2, y2 = streams.teacher_regression(3, 100)
    np.testing.assert_array_equal(y1, y2)
    self.assertGreater(float(np.std(y1)), 0.1)


if __name__ == "__main__":
  pytest.main([__file__])
