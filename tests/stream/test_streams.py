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

  def test_teacher_regression_is_deterministic(self):
    x1, y1 = streams.teacher_regression(3, 100)
    x2, y2 = streams.teacher_regression(3, 100)
    np.testing.assert_array_equal(y1, y2)
    self.assertGreater(float(np.std(y1)), 0.1)


if __name__ == "__main__":
  pytest.main([__file__])
