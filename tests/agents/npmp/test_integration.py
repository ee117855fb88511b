"""A tiny library of two experts → NPMP through Reverb (with LFPC, resumed) → one-shot
tracking of the held-out skill → reuse of the frozen decoder by kl_svg0 on a new task, all
through the CLI."""

import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from priorax import envs
from priorax.agents.cloning import experts
from priorax.agents.npmp import acting
from priorax.experts import library
from priorax.launchers import cli
from priorax.replay import episodes
from tests.agents.cloning import conftest as cloning_conftest

ENV = "dmc:point_mass-easy"
ACTION_REPEAT = 10  # 100 steps per episode.
EPISODES = 2
# Two ways of moving the point mass: the suite's PD controller, and a softer, more damped one.
SKILLS = {"pd": None,
          "damped": experts.make_linear_expert({"position": -2.0 * np.eye(2),
                                                "velocity": -2.0 * np.eye(2)}, np.zeros(2), 0.1)}


def _write_skill(root: str, name: str, target, seed: int) -> library.Skill:
  run_dir = os.path.join(root, name, "run")
  cloning_conftest.write_expert_run(run_dir, seed=seed, steps=200, target_expert=target)
  expert = experts.load_expert(run_dir)
  act = jax.jit(lambda o: expert.mean_action(jax.tree_util.tree_map(lambda x: x[None], o))[0])
  writer = episodes.EpisodeWriter(os.path.join(root, name, "rollouts"))
  returns, transitions = [], 0
  for index in range(EPISODES):
    environment = envs.make_environment(ENV, seed + 1 + index, action_repeat=ACTION_REPEAT)
    timestep = environment.reset()
    writer.add_first(timestep)
    returns.append(0.0)
    while not timestep.last():
      action = np.asarray(act({k: jnp.asarray(v) for k, v in timestep.observation.items()}))
      timestep = environment.step(action)
      writer.add(action, timestep)
      returns[-1] += float(timestep.reward)
      transitions += 1
  return library.Skill(name=name, environment=ENV, action_repeat=ACTION_REPEAT,
                       expert=os.path.join(name, "run"), rollouts=os.path.join(name, "rollouts"),
                       episodes=EPISODES, transitions=transitions,
                       mean_return=float(np.mean(returns)), train_env_steps=0,
                       train_cpu_seconds=0.0)


@pytest.fixture(scope="module")
def tiny_library(tmp_path_factory):
  root = str(tmp_path_factory.mktemp("library"))
  skills = [_write_skill(root, name, target, seed)
            for seed, (name, target) in enumerate(SKILLS.items())]
  library.write_library(root, "point_mass", ("position", "velocity"), skills)
  return root


NPMP_SETTINGS = ["latent_size=3", "encoder_hidden_sizes=16", "decoder_hidden_sizes=16,16",
                 "sequence_length=4", "num_future_frames=2", "batch_size=8", "lfpc=true",
                 "lfpc_perturbations=2", "learning_rate=1e-3"]


def test_library_to_npmp_to_tracking_to_reuse(tiny_library, tmp_path, capsys):
  run = str(tmp_path / "npmp")
  common = ["npmp", "--library", tiny_library, "--run-dir", run, "--skills", "pd",
            "--log-every-s", "0.5"]
  sets = [arg for s in NPMP_SETTINGS for arg in ("--set", s)]
  assert cli.main(common + ["--steps", "20"] + sets) == 0
  # Resumed from its checkpoint (no --set needed: the saved config is reused).
  assert cli.main(common + ["--steps", "30"]) == 0
  out = capsys.readouterr().out
  assert "resumed from" in out and "trained 30 learner steps on 1 skills" in out
  with open(os.path.join(run, "summary.json")) as f:
    summary = json.load(f)
  assert np.isfinite(summary["last_logged_metrics"]["loss"])
  assert summary["last_logged_metrics"]["lfpc_nll"] != 0.0  # The LFPC data went through Reverb.
  assert os.path.exists(os.path.join(run, "logs", "learner.csv"))

  # One-shot tracking of the held-out skill, from the reference's own start state.
  video = str(tmp_path / "tracked.mp4")
  assert cli.main(["npmp-track", "--run-dir", run, "--skill", "damped", "--episode", "1",
                   "--video", video]) == 0
  assert os.path.getsize(video) > 0 and f"video: {video}" in capsys.readouterr().out
  with open(os.path.join(run, "tracking", "damped_1.json")) as f:
    result = json.load(f)
  assert result["held_out"] and result["matched_initial_state"] and result["seed"] == 3
  assert result["steps"] == 100 and np.isfinite(result["return_fraction"])
  assert result["reference_return"] > 0
  assert cli.main(["evaluate", "--run-dir", run]) == 2
  assert "npmp-track" in capsys.readouterr().err

  # Reuse: kl_svg0's action is the latent of the frozen decoder, on a task the library lacks.
  high = str(tmp_path / "reuse")
  assert cli.main(["train", "--agent", "kl_svg0", "--env", "dmc:point_mass-hard", "--low-level",
                   run, "--run-dir", high, "--steps", "40", "--eval-every", "40",
                   "--eval-episodes", "1", "--set", "min_replay_size=16", "--set",
                   "batch_size=8", "--set", "policy_hidden_sizes=16", "--set",
                   "critic_hidden_sizes=16"]) == 0
  with open(os.path.join(high, "summary.json")) as f:
    assert json.load(f)["actor_steps"] == 40
  environment = acting.make_low_level_environment("dmc:point_mass-hard", 0, run)
  assert environment.action_spec().shape == (3,)
  assert cli.main(["evaluate", "--run-dir", high, "--episodes", "1"]) == 0


def test_bad_inputs_fail_with_one_line(tiny_library, tmp_path, capsys):
  assert cli.main(["npmp", "--library", str(tmp_path), "--run-dir", str(tmp_path / "r")]) == 2
  assert "not an expert library" in capsys.readouterr().err
  assert cli.main(["npmp", "--library", tiny_library, "--run-dir", str(tmp_path / "r"),
                   "--skills", "nope"]) == 2
  assert "no skill 'nope'" in capsys.readouterr().err
  assert cli.main(["npmp", "--library", tiny_library, "--run-dir", str(tmp_path / "r"),
                   "--set", "alpha=2"]) == 2
  assert "alpha=2.0 must lie in [0, 1)" in capsys.readouterr().err
