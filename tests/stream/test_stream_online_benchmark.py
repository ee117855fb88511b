"""Crash and protocol test of benchmarks/stream_online.py, part 1 (online error).

Hyper-parameters must be chosen on tuning streams only, and the records must come from evaluation
streams with disjoint seeds. The figures themselves are not checked (tiny budgets).
"""

import numpy as np
import pytest

from benchmarks import stream_online


@pytest.fixture
def tiny_grids(monkeypatch):
  grids = {
      "online_sgd": {"learning_rate": (0.1, 1.0)},
      "kalman_fixed_drift": {"noise_variance": (0.1,), "prior_variance": (1.0,)},
      # A union of two grids, as in the benchmark.
      "kalman_learned_drift": [
          {"noise_variance": (2.0,), "prior_variance": (1.0,), "drift_estimate": ("online",),
           "drift_learning_rate": (0.1,)},
          {"noise_variance": (2.0,), "prior_variance": (1.0,), "drift_estimate": ("per_batch",),
           "drift_learning_rate": (0.3,)}],
  }
  monkeypatch.setattr(stream_online, "ONLINE_GRIDS", grids)
  return grids


def test_selection_sees_only_tuning_streams(tiny_grids, monkeypatch):
  seen = []
  real = stream_online._online_method

  def spy(method, hyper, x, y, seeds):
    seen.append((method, tuple(seeds)))
    return real(method, hyper, x, y, seeds)

  monkeypatch.setattr(stream_online, "_online_method", spy)
  curves, gammas, selected = stream_online.run_kalman([0, 1, 2], num_tuning_seeds=2, steps=20)
  tuning = (stream_online.TUNING_SEED_OFFSET, stream_online.TUNING_SEED_OFFSET + 1)
  for method, grid in tiny_grids.items():
    calls = [seeds for m, seeds in seen if m == method]
    # One call per grid point on the tuning streams, then one on the evaluation streams.
    assert calls == [tuning] * len(stream_online._grid_points(grid)) + [(0, 1, 2)]
    assert set(curves[method]) == {0, 1, 2}
    for errors in curves[method].values():
      assert errors.shape == (20,) and np.all((errors >= 0) & (errors <= 1))
    hyper, score = selected[method]
    assert hyper in stream_online._grid_points(grid) and 0.0 <= score <= 1.0
  assert set(gammas) == {0, 1, 2}


def test_select_hyper_takes_the_lowest_tuning_error(tiny_grids):
  x, y = stream_online._stack([stream_online.streams.digits_drift_stream(s, 20) for s in (7, 8)])
  best, best_score, scored = stream_online.select_hyper(
      "online_sgd", tiny_grids["online_sgd"], x, y, [7, 8])
  assert [h for h, _ in scored] == [{"learning_rate": 0.1}, {"learning_rate": 1.0}]
  assert best_score == min(s for _, s in scored)
  assert best == min(scored, key=lambda p: p[1])[0]


if __name__ == "__main__":
  pytest.main([__file__])
