"""The distillation benchmark's bookkeeping: the 90% crossing, the expert look-up, the plot."""

import os

import pytest

from benchmarks import cloning_apc
from benchmarks import results_io
from priorax import envs
from priorax import specs


def test_interactions_to_threshold_takes_the_first_budget_reaching_90pct():
  assert cloning_apc.interactions_to_threshold([(4000, 0.95), (1000, 0.5), (2000, 0.91)]) == (
      2000, True)
  assert cloning_apc.interactions_to_threshold([(1000, 0.5), (5000, 0.89)]) == (5000, False)


def test_method_names_split_into_base_method_and_variant():
  assert cloning_apc.split_method("apc") == ("apc", "")
  assert cloning_apc.split_method("naive_abc_compressed") == ("naive_abc", "_compressed")
  assert cloning_apc.split_method("bc_privileged") == ("bc", "_privileged")
  with pytest.raises(ValueError, match="'ppo'"):
    cloning_apc.split_method("ppo")
  with pytest.raises(ValueError, match="'apc_tiny'"):
    cloning_apc.split_method("apc_tiny")


def test_privileged_student_sees_every_key_but_the_privileged_ones():
  spec = specs.make_environment_spec(envs.make_environment("dmc:walker-run", 0))
  assert cloning_apc.student_observation_keys(spec, ["height"]) == ("orientations", "velocity")
  with pytest.raises(ValueError, match=r"\['target_pos'\] are not observations"):
    cloning_apc.student_observation_keys(spec, ["target_pos"])
  with pytest.raises(ValueError, match="no observation"):
    cloning_apc.student_observation_keys(spec, ["orientations", "height", "velocity"])


def test_expert_of_a_missing_seed_falls_back_to_seed_0(tmp_path):
  seed0 = tmp_path / "dmc_walker-walk_repeat2_seed0" / "checkpoints"
  seed0.mkdir(parents=True)
  (seed0 / "ckpt_0000000001.pkl").write_bytes(b"")
  assert cloning_apc.expert_run_dir(str(tmp_path), "dmc:walker-walk", 2) == str(seed0.parent)
  with pytest.raises(SystemExit, match="no expert"):
    cloning_apc.expert_run_dir(str(tmp_path), "dmc:cartpole-swingup", 0)


def test_plot_writes_a_png(tmp_path):
  records = [results_io.Record("dmc:x-y", method, "return_fraction", value, "fraction", seed=seed,
                               env_steps=steps)
             for method in ("bc", "apc_compressed", "apc_privileged") for seed in (0, 1)
             for steps, value in ((1000, 0.3), (5000, 0.8))]
  path = os.path.join(tmp_path, "plot.png")
  cloning_apc.plot(records, path)
  assert os.path.getsize(path) > 0


def test_budget_sweep_stops_at_the_first_student_reaching_90pct_and_skips_missing_ones():
  returns = {1: 50.0, 2: None, 5: 95.0, 10: 99.0}
  trained = []

  def run(budget):
    trained.append(budget)
    value = returns[budget]
    return None if value is None else {"final_eval_return": value, "env_steps": budget * 1000}

  swept = list(cloning_apc.budget_sweep(run, [10, 5, 2, 1], 100.0, all_budgets=False))
  assert [(s["env_steps"], f) for s, f in swept] == [(1000, 0.5), (5000, 0.95)]
  assert trained == [1, 2, 5]
  swept = list(cloning_apc.budget_sweep(run, [1, 2, 5, 10], 100.0, all_budgets=True))
  assert [s["env_steps"] for s, _ in swept] == [1000, 5000, 10000]
