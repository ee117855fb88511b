"""Hierarchical `kl_svg0` end to end (CLI, local launcher, real Reverb, dm_control): a tiny run,
then a second run that reuses its low level π_L and high-level prior π0_H (frozen) and learns a
new π_H."""

import json
import pickle

import jax
import numpy as np

from priorax.launchers import cli
from tests.launchers.conftest import TINY

ENV = ["--env", "dmc:cartpole-balance", "--action-repeat", "4", "--steps", "300",
       "--eval-every", "100000", "--eval-episodes", "1"]
HIERARCHICAL = ["--set", "prior=hierarchical", "--set", "latent_size=4",
                "--set", "low_level_observation_keys=position,velocity",
                "--set", "prior_observation_keys=position",
                "--set", "low_level_hidden_sizes=16,16", "--set", "prior_hidden_sizes=16,16"]


def _latest_state(run_dir):
  paths = sorted((run_dir / "checkpoints").glob("ckpt_*.pkl"))
  with open(paths[-1], "rb") as f:
    return pickle.load(f)["learner_state"]


def _same(a, b) -> bool:
  return all(jax.tree_util.tree_leaves(jax.tree_util.tree_map(np.array_equal, a, b)))


def test_hierarchical_run_then_transfer_of_its_low_level_and_prior(tmp_path):
  source, target = tmp_path / "source", tmp_path / "target"
  assert cli.main(["train", *ENV, "--run-dir", str(source), *TINY, *HIERARCHICAL]) == 0
  first = _latest_state(source)
  assert first["steps"] > 0 and set(first["policy_params"]) == {"high", "low"}

  # --prior-from copies the prior's kind, keys and sizes, the low level's included.
  transfer = ["--prior-from", str(source), "--freeze-prior", "--set", "freeze_low_level=true"]
  assert cli.main(["train", *ENV, "--run-dir", str(target), "--seed", "1", *TINY,
                   *transfer]) == 0
  config = json.loads((target / "config.json").read_text())["agent_config"]
  assert (config["prior"], config["latent_size"], config["low_level_observation_keys"],
          config["low_level_hidden_sizes"]) == ("hierarchical", 4, ["position", "velocity"], [16, 16])
  second = _latest_state(target)
  summary = json.loads((target / "summary.json").read_text())
  assert second["steps"] > 0 and np.isfinite(summary["final_eval_return"])
  # The frozen pieces are the source run's, bit for bit; π_H and the critic were learned anew.
  assert _same(second["policy_params"]["low"], first["policy_params"]["low"])
  assert _same(second["prior_params"], first["prior_params"])
  assert not _same(second["policy_params"]["high"], first["policy_params"]["high"])
  assert not _same(second["critic_params"], first["critic_params"])


def test_transfer_from_a_non_hierarchical_run_is_one_line_error(tmp_path, capsys):
  source = tmp_path / "flat"
  assert cli.main(["train", *ENV, "--steps", "80", "--run-dir", str(source), *TINY]) == 0
  code = cli.main(["train", *ENV, "--run-dir", str(tmp_path / "t"), *TINY, *HIERARCHICAL,
                   "--set", f"prior_from={source}"])
  assert code == cli.EXIT_BAD_INPUT
  err = capsys.readouterr().err.strip().splitlines()
  assert err[-1].startswith("priorax train: error: prior_from=") and \
      "expected a prior='hierarchical' run" in err[-1]
