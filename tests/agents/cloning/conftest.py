"""A tiny trained expert for the cloning tests: a 16-16 `kl_svg0`-format policy run directory on
dmc:point_mass-easy, fitted in a second to the scripted PD controller (so it solves the task)."""

import dataclasses
import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from priorax.agents import kl_svg0
from priorax.agents.cloning import experts
from priorax.networks import policies
from priorax.utils import checkpointing

ENV = "dmc:point_mass-easy"
HIDDEN = (16, 16)
EXPERT_STD = 0.1


def write_expert_run(run_dir: str, seed: int = 0, steps: int = 400,
                     target_expert: experts.Expert | None = None) -> None:
  """Writes config.json and a checkpoint holding the policy fitted to `target_expert` (default:
  the scripted PD controller), as `priorax train` would."""
  config = kl_svg0.KLSVG0Config(policy_hidden_sizes=HIDDEN, critic_hidden_sizes=HIDDEN)
  network = policies.make_gaussian_policy(2, HIDDEN, layer_norm=config.layer_norm,
                                          min_scale=config.min_scale)
  scripted = target_expert or experts.make_scripted_expert(ENV)
  rng = np.random.default_rng(seed)
  observation = {"position": rng.uniform(-0.3, 0.3, (1024, 2)).astype(np.float32),
                 "velocity": rng.uniform(-1.0, 1.0, (1024, 2)).astype(np.float32)}
  target = scripted.distribution(observation).mean
  params = network.init(jax.random.PRNGKey(seed), observation)
  optimizer = optax.adam(1e-2)

  def loss(p):
    gaussian = network.apply(p, observation)
    return (jnp.mean(jnp.square(gaussian.mean - target))
            + jnp.mean(jnp.square(jnp.log(gaussian.std / EXPERT_STD))))

  @jax.jit
  def step(p, state):
    updates, state = optimizer.update(jax.grad(loss)(p), state)
    return optax.apply_updates(p, updates), state

  state = optimizer.init(params)
  for _ in range(steps):
    params, state = step(params, state)
  os.makedirs(run_dir, exist_ok=True)
  with open(os.path.join(run_dir, "config.json"), "w") as f:
    json.dump({"format_version": 1, "agent": "kl_svg0", "env": ENV, "seed": seed,
               "agent_config": dataclasses.asdict(config), "action_repeat": 1}, f)
  checkpointing.Checkpointer(os.path.join(run_dir, "checkpoints")).save(
      0, {"learner_state": {"policy_params": jax.device_get(params)}, "counts": {}})


@pytest.fixture(scope="session")
def expert_run_dir(tmp_path_factory):
  run_dir = str(tmp_path_factory.mktemp("expert"))
  write_expert_run(run_dir)
  return run_dir
