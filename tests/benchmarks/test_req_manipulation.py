"""The REQ manipulation benchmark's bookkeeping: curves in environment steps, success rates and
BC/expert lines from finished runs only, mean ± std over seeds at shared evaluation points."""

import json

import dm_env
from dm_env import specs
import numpy as np

from benchmarks import req_experts
from benchmarks import req_manipulation as bench
from priorax.loop import EnvironmentLoop


def _fake_run(work_dir, name, seed, curve=None, success=None, summary=None):
  run_dir = work_dir / f"{name}_seed{seed}"
  (run_dir / "logs").mkdir(parents=True)
  if curve:
    lines = ["actor_steps,episode_return"] + [f"{s},{r}" for s, r in curve]
    (run_dir / "logs" / "evaluator.csv").write_text("\n".join(lines) + "\n")
  if summary:
    (run_dir / "summary.json").write_text(json.dumps(summary))
  if success:
    returns, last_rewards = success
    bench._write_success(str(run_dir / bench.SUCCESS_FILE), returns, last_rewards)


def test_collect_summarise_and_plot(tmp_path):
  repeat = bench.ACTION_REPEAT
  _fake_run(tmp_path, "lift_brick_req_expert", 0, [(500, 10.0), (1000, 50.0)],
            ([60.0, 40.0], [2.0, 0.5]))  # Success: last reward / repeat ≥ 0.5 (1.0 and 0.25).
  _fake_run(tmp_path, "lift_brick_req_expert", 1, [(500, 20.0), (1000, 70.0), (1500, 90.0)],
            ([80.0], [1.0]))
  _fake_run(tmp_path, "lift_brick_req_no_expert", 0, [(500, 1.0)])  # Unfinished: no success.
  _fake_run(tmp_path, "lift_brick_bc_expert", 0, success=([30.0], [0.0]),
            summary={"env_steps": 2500, "final_eval_return": 33.0})
  _fake_run(tmp_path, "lift_brick_expert", 0, success=([120.0, 100.0], [2.0, 1.8]))
  records = bench.collect(str(tmp_path), ["lift_brick"])
  task = bench.environment_of("lift_brick")
  assert {r.task for r in records} == {task}
  found = {(r.method, r.seed, r.metric): (r.value, r.env_steps) for r in records
           if r.metric != "eval_return"}
  assert found == {
      ("req_expert", 0, "eval_return_auc"): (30.0, 1000 * repeat),
      ("req_expert", 0, "success_rate"): (0.5, 1000 * repeat),
      ("req_expert", 0, "final_return"): (50.0, 1000 * repeat),
      ("req_expert", 1, "eval_return_auc"): (60.0, 1500 * repeat),
      ("req_expert", 1, "success_rate"): (1.0, 1500 * repeat),
      ("req_expert", 1, "final_return"): (80.0, 1500 * repeat),
      ("bc_expert", 0, "success_rate"): (0.0, 2500),
      ("bc_expert", 0, "final_return"): (30.0, 2500),
      ("expert", 0, "success_rate"): (1.0, None),
      ("expert", 0, "final_return"): (110.0, None),
  }
  assert bench.per_seed(records, task, "bc_expert", "eval_return") == {0: 33.0}
  assert bench.per_seed(records, task, "req_expert", "eval_return") == {0: 50.0, 1: 90.0}
  # Mean ± std over seeds at the evaluation points both seeds have.
  steps, mean, std = bench.curve_stats(records, task, "req_expert")
  np.testing.assert_allclose(steps, [500 * repeat, 1000 * repeat])
  np.testing.assert_allclose(mean, [15.0, 60.0])
  np.testing.assert_allclose(std, [5.0, 10.0])
  lines = bench.summarise(records)
  assert lines[0] == (f"{task} req_expert: final eval_return 70.0 ± 20.0, success_rate "
                      f"0.75 ± 0.25, mean over evaluations 45.0 ± 15.0 (seeds [0, 1])")
  assert len(lines) == 3  # req_no_expert has not finished.
  bench.plot(records, str(tmp_path / "plot.png"))
  assert (tmp_path / "plot.png").stat().st_size > 0


class _Countdown(dm_env.Environment):
  """Three steps with rewards 0.1, 0.2, 0.3: the last reward is 0.3."""

  def reset(self):
    self._t = 0
    return dm_env.restart({"x": np.zeros(1, np.float32)})

  def step(self, action):
    self._t += 1
    step = dm_env.termination if self._t == 3 else dm_env.transition
    return step(0.1 * self._t, {"x": np.zeros(1, np.float32)})

  def observation_spec(self):
    return {"x": specs.Array((1,), np.float32)}

  def action_spec(self):
    return specs.BoundedArray((1,), np.float32, -1.0, 1.0)


class _ZeroActor:

  def observe_first(self, timestep):
    del timestep

  def observe(self, action, next_timestep):
    del action, next_timestep

  def select_action(self, observation):
    del observation
    return np.zeros(1, np.float32)

  def update(self, wait=False):
    del wait


def test_success_is_read_from_the_episodes_last_reward():
  result = EnvironmentLoop(_Countdown(), _ZeroActor()).run_episode()
  np.testing.assert_allclose([result["episode_return"], result["last_reward"]], [0.6, 0.3])
  # With action repeat 2 the last reward sums two steps: success needs a mean ≥ 0.5.
  assert req_experts.succeeded(1.0, action_repeat=2) and not req_experts.succeeded(0.9, 2)
  assert req_experts.succeeded(0.5) and not req_experts.succeeded(0.3)
