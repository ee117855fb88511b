"""The transfer benchmark's bookkeeping: steps to threshold from a run's evaluations (in
environment steps), a run that never reaches it recorded at its budget, unfinished runs skipped;
the runs it plans for a family, the transferred prior frozen unless `--fine-tune-prior`."""

import json

from benchmarks import transfer_kl_svg0 as bench


def _fake_run(work_dir, name, seed, curve, actor_steps=None):
  run_dir = work_dir / f"{name}_seed{seed}"
  (run_dir / "logs").mkdir(parents=True)
  (run_dir / "config.json").write_text(json.dumps({"seed": seed}))
  lines = ["actor_steps,episode_return"] + [f"{s},{r}" for s, r in curve]
  (run_dir / "logs" / "evaluator.csv").write_text("\n".join(lines) + "\n")
  if actor_steps is not None:
    (run_dir / "summary.json").write_text(json.dumps({"actor_steps": actor_steps}))


def test_steps_to_threshold_censoring_and_unfinished_runs(tmp_path):
  _fake_run(tmp_path, "scratch", 0, [(1000, 10.0), (2000, 650.0), (3000, 720.0)], 3000)
  _fake_run(tmp_path, "prior_asymmetric", 0, [(1000, 800.0), (2000, 900.0)], 2000)
  _fake_run(tmp_path, "prior_full_obs", 0, [(1000, 5.0), (2000, 6.0)], 2000)
  _fake_run(tmp_path, "prior_full_obs", 1, [(1000, 900.0)])  # No summary yet: unfinished.
  _fake_run(tmp_path, "pretrain_asymmetric", 0, [(1000, 900.0)], 1000)  # Not a transfer run.
  records = bench.collect(str(tmp_path), "family:reacher_targets-holdout", threshold=700.0)
  found = {(r.method, r.seed, r.metric): (r.value, r.env_steps) for r in records
           if r.metric != "eval_return"}
  repeat = bench.ACTION_REPEAT
  assert found == {
      ("scratch", 0, "steps_to_threshold"): (3000.0 * repeat, 3000 * repeat),
      ("scratch", 0, "reached_threshold"): (1.0, 3000 * repeat),
      ("prior_asymmetric", 0, "steps_to_threshold"): (1000.0 * repeat, 2000 * repeat),
      ("prior_asymmetric", 0, "reached_threshold"): (1.0, 2000 * repeat),
      ("prior_full_obs", 0, "steps_to_threshold"): (2000.0 * repeat, 2000 * repeat),
      ("prior_full_obs", 0, "reached_threshold"): (0.0, 2000 * repeat),
  }
  assert sum(r.metric == "eval_return" for r in records) == 7
  assert {r.task for r in records} == {"family:reacher_targets-holdout"}


def _planned_runs(monkeypatch, *flags):
  """The (run name, environment, flags) that `run_seed` would train for seed 0, in order."""
  runs = []
  monkeypatch.setattr(bench, "train_run", lambda run_dir, env, seed, steps, flags, *rest:
                      runs.append((run_dir.rsplit("/", 1)[-1], env, flags)))
  args = bench.make_transfer_parser().parse_args(
      ["--family", "cheetah_speeds", "--work-dir", "/w", "--methods", "scratch",
       "prior_asymmetric", *flags])
  bench.run_seed(0, args)
  return runs


def test_transfer_freezes_the_prior_unless_fine_tuned(monkeypatch):
  pretrain, scratch, transfer = _planned_runs(monkeypatch)
  assert pretrain[:2] == ("pretrain_asymmetric_seed0", "family:cheetah_speeds")
  assert "prior_observation_keys=position,velocity" in pretrain[2]  # Not `target_speed`.
  assert scratch == ("scratch_seed0", "family:cheetah_speeds-holdout", [])
  assert transfer[1] == "family:cheetah_speeds-holdout"
  assert transfer[2] == ["--prior-from", "/w/pretrain_asymmetric_seed0", "--freeze-prior"]
  *_, fine_tuned = _planned_runs(monkeypatch, "--fine-tune-prior")
  assert fine_tuned[2] == ["--prior-from", "/w/pretrain_asymmetric_seed0"]
