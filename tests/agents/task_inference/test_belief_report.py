"""The belief-error-by-step report of a `task_inference` run directory: one row per decision of
an episode, the first matching a hand computation, and a clear error for rl2 runs."""

import csv
import dataclasses
import json

import jax
import numpy as np
import pytest

from priorax import envs
from priorax import specs
from priorax.agents.task_inference import belief_report
from priorax.agents.task_inference import config as config_lib
from priorax.agents.task_inference import losses
from priorax.agents.task_inference import networks as networks_lib
from priorax.networks import recurrent
from priorax.utils import checkpointing

ENV, ACTION_REPEAT, SEED = "meta:point_goal", 4, 3  # 120 environment steps: 30 decisions.


def _make_run(run_dir, variant):
  """A run directory as the launcher writes it, holding freshly initialised parameters."""
  config = config_lib.TaskInferenceConfig(variant=variant, core_hidden_sizes=(8,), lstm_size=8,
                                          policy_hidden_sizes=(8,), critic_hidden_sizes=(8,))
  run_dir.mkdir(exist_ok=True)
  (run_dir / "config.json").write_text(json.dumps({
      "agent": "task_inference", "env": ENV, "seed": SEED, "action_repeat": ACTION_REPEAT,
      "agent_config": dataclasses.asdict(config)}))
  environment = envs.make_environment(ENV, SEED, action_repeat=ACTION_REPEAT)
  networks = networks_lib.make_networks(specs.make_environment_spec(environment), config)
  params = networks.init(jax.random.PRNGKey(0))
  checkpointing.Checkpointer(str(run_dir / "checkpoints")).save(
      100, {"learner_state": {"policy_params": params}})
  return networks, params


def test_report_scores_every_decision_of_an_episode(tmp_path):
  networks, params = _make_run(tmp_path, "task_inference")
  report = belief_report.write_belief_report(str(tmp_path), num_episodes=2)
  with open(report["csv"]) as f:
    rows = list(csv.DictReader(f))
  assert [int(r["step"]) for r in rows] == list(range(30))
  assert all(int(r["episodes"]) == 2 for r in rows)
  errors = np.array([float(r["belief_error"]) for r in rows])
  assert np.all(np.isfinite(errors)) and np.all(errors >= 0)
  assert (tmp_path / belief_report.PLOT_FILE).stat().st_size > 0
  # The first decision's error by hand: the core's first step from zeros on the first observation
  # of the report's (seeded) episodes.
  first = []
  environment = envs.make_environment(ENV, SEED + belief_report.SEED_OFFSET,
                                      action_repeat=ACTION_REPEAT)
  zeros = recurrent.zero_core_input(specs.make_environment_spec(environment), (1,))
  for _ in range(2):
    observation = jax.tree_util.tree_map(lambda x: x[None], environment.reset().observation)
    features, _ = networks.core.step(params["core"], zeros._replace(observation=observation),
                                     networks.core.initial_state(1))
    belief = networks.heads_apply(params["heads"], features, observation).belief
    first.append(float(losses.belief_error(belief, observation["task"], False)[0]))
    while not environment.step(np.zeros(2, np.float32)).last():
      pass
  np.testing.assert_allclose(report["first_step_error"], np.mean(first), rtol=1e-5)
  assert report["first_step_error"] == pytest.approx(errors[0])


def test_report_refuses_a_run_without_a_belief(tmp_path):
  _make_run(tmp_path, "rl2")
  with pytest.raises(ValueError, match="'rl2' run, which has no belief"):
    belief_report.belief_errors_by_step(str(tmp_path), num_episodes=1)
  with pytest.raises(ValueError, match="num_episodes=0 must be >= 1"):
    belief_report.belief_errors_by_step(str(tmp_path), num_episodes=0)
