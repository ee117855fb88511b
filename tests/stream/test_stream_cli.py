"""Tests for priorax.stream.cli: the run directory it writes and its argument checks."""

import csv
import json
import os
import tempfile
import unittest

import pytest

from priorax.stream import cli


class StreamCliTest(unittest.TestCase):

  def test_writes_run_directory(self):
    run_dir = self.enterContext(tempfile.TemporaryDirectory())
    code = cli.main(["--learner", "independent,finetune_pruned", "--stream", "tiny",
                     "--max-steps", "20", "--run-dir", run_dir])
    self.assertEqual(code, 0)
    for name in ("config.json", "results.csv", "summary.json", "error_vs_compute.png"):
      self.assertTrue(os.path.exists(os.path.join(run_dir, name)), name)
    with open(os.path.join(run_dir, "results.csv")) as f:
      rows = list(csv.DictReader(f))
    self.assertEqual(len(rows), 2 * 3)
    self.assertEqual({r["learner"] for r in rows}, {"independent", "finetune_pruned"})
    with open(os.path.join(run_dir, "summary.json")) as f:
      summary = json.load(f)
    for s in summary.values():
      self.assertGreater(s["stream_flops"], 0)
      self.assertTrue(0.0 <= s["stream_test_error"] <= 1.0)
    # Pruning halves the hidden layers from the second task on: less compute.
    self.assertLess(summary["finetune_pruned"]["stream_flops"],
                    summary["independent"]["stream_flops"])

  def test_rejects_unknown_learner(self):
    self.assertEqual(cli.main(["--learner", "dynamic_knn", "--run-dir",
                               self.enterContext(tempfile.TemporaryDirectory())]), 2)


if __name__ == "__main__":
  pytest.main([__file__])
