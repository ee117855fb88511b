"""`priorax train --agent req` end to end through the embedded Reverb server: online with a
scripted expert (intertwined exploration, expert regression) and offline from a dataset directory,
each resumed from its checkpoint."""

import csv
import json

import numpy as np

from priorax import envs
from priorax.agents.req import experts
from priorax.launchers import cli
from priorax.replay import episodes

ENV = "dmc:point_mass-easy"
ACTION_REPEAT = "4"  # 250 decisions per episode.
TINY = ["--set", "prior_hidden_sizes=16,16", "--set", "critic_hidden_sizes=16,16",
        "--set", "batch_size=32", "--set", "min_replay_size=64", "--set", "num_samples=8",
        "--set", "dual_steps=10"]


def _train(run_dir, steps, *extra):
  return cli.main(["train", "--agent", "req", "--env", ENV, "--action-repeat", ACTION_REPEAT,
                   "--expert", "point_mass", "--steps", str(steps), "--run-dir", str(run_dir),
                   "--eval-every", "100000", "--eval-episodes", "1", *TINY, *extra])


def _learner_rows(run_dir):
  with open(run_dir / "logs" / "learner.csv", newline="") as f:
    return list(csv.DictReader(f))


def test_online_with_expert_trains_and_resumes(tmp_path, capsys):
  # The first episode is the expert's alone; later ones intertwine it.
  assert _train(tmp_path, 300, "--set", "expert_episodes=1", "--log-every-s", "0.01") == 0
  summary = json.loads((tmp_path / "summary.json").read_text())
  assert summary["actor_steps"] == 300 and summary["learner_steps"] > 0
  assert json.loads((tmp_path / "config.json").read_text())["expert"] == "point_mass"
  rows = _learner_rows(tmp_path)
  assert rows and all(np.isfinite(float(r["critic_loss"])) for r in rows)
  # The replayed states carry the expert's action, so the prior's expert term is active.
  assert any(float(r["expert_loss"]) != 0.0 for r in rows)
  capsys.readouterr()
  assert _train(tmp_path, 400, "--set", "expert_episodes=1", "--log-every-s", "0.01") == 0
  assert "resumed from" in capsys.readouterr().out
  assert json.loads((tmp_path / "summary.json").read_text())["actor_steps"] == 400


def _record_expert_dataset(directory, num_episodes):
  writer = episodes.EpisodeWriter(str(directory))
  steps = 0
  for seed in range(num_episodes):
    environment = experts.ExpertActionWrapper(
        envs.make_environment(ENV, seed, action_repeat=int(ACTION_REPEAT)),
        experts.make_expert("point_mass", ENV))
    timestep = environment.reset()
    writer.add_first(timestep)
    while not timestep.last():
      action = timestep.observation[experts.EXPERT_ACTION_KEY]
      timestep = environment.step(action)
      writer.add(action, timestep)
      steps += 1
  return steps


def test_offline_learns_from_dataset_only_and_resumes(tmp_path, capsys):
  dataset = tmp_path / "dataset"
  steps = _record_expert_dataset(dataset, num_episodes=2)
  run_dir = tmp_path / "run"
  assert _train(run_dir, 40, "--dataset", str(dataset), "--eval-every", "20") == 0
  out = capsys.readouterr().out
  assert f"loaded {steps:,} steps" in out
  summary = json.loads((run_dir / "summary.json").read_text())
  assert summary["learner_steps"] == 40 and summary["actor_steps"] == 0
  assert summary["offline_dataset"] == str(dataset)
  assert np.isfinite(summary["final_eval_return"])
  assert (run_dir / "curve.png").stat().st_size > 0  # Evaluation return against learner steps.
  # Resuming restores the loaded replay from its checkpoint instead of loading it again.
  assert _train(run_dir, 60, "--dataset", str(dataset)) == 0
  out = capsys.readouterr().out
  assert "resumed from" in out and "loaded" not in out
  assert json.loads((run_dir / "summary.json").read_text())["learner_steps"] == 60


def test_bad_expert_or_dataset_is_one_line_error(tmp_path, capsys):
  code = cli.main(["train", "--agent", "req", "--env", ENV, "--expert", "lift_brick",
                   "--run-dir", str(tmp_path / "a")])
  assert code == 2 and "expert 'lift_brick' controls" in capsys.readouterr().err
  code = cli.main(["train", "--agent", "req", "--env", ENV, "--expert", "nope",
                   "--run-dir", str(tmp_path / "b")])
  assert code == 2 and "unknown expert 'nope'" in capsys.readouterr().err
  code = cli.main(["train", "--agent", "req", "--env", ENV, "--dataset", str(tmp_path / "none"),
                   "--run-dir", str(tmp_path / "c"), *TINY])
  assert code == 2 and "holds no episode_*.npz" in capsys.readouterr().err
  code = cli.main(["train", "--agent", "kl_svg0", "--env", ENV, "--dataset", str(tmp_path),
                   "--run-dir", str(tmp_path / "d")])
  assert code == 2 and "no offline mode" in capsys.readouterr().err
