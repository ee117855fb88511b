"""Helpers of the replay tests: a small dict-observation spec, episode builders, a table reader.

Step t of episode e carries the id i = 100·e + t: observation {"position": [i, i + 0.5],
"velocity": [-i]}, action [1000 + i], extras {"log_prob": -i}, so a stored item shows at a glance
which steps it holds.
"""

from typing import Sequence

import dm_env
import numpy as np
import reverb
from dm_env import specs as dm_specs

from priorax import specs
from priorax.replay import packing

SPEC = specs.EnvironmentSpec(
    observations={
        "position": dm_specs.Array((2,), np.float32, "position"),
        "velocity": dm_specs.Array((1,), np.float32, "velocity"),
    },
    actions=dm_specs.BoundedArray((1,), np.float32, -1.0, 1.0, "action"),
    rewards=dm_specs.Array((), np.float32, "reward"),
    discounts=dm_specs.BoundedArray((), np.float32, 0.0, 1.0, "discount"),
)
EXTRAS_SPEC = {"log_prob": dm_specs.Array((), np.float32)}


def observation(i: int) -> dict[str, np.ndarray]:
  return {
      "position": np.array([i, i + 0.5], np.float32),
      "velocity": np.array([-i], np.float32),
  }


def action(i: int) -> np.ndarray:
  return np.array([1000 + i], np.float32)


def extras(i: int) -> dict[str, np.ndarray]:
  return {"log_prob": np.array(-i, np.float32)}


def play_episode(adder, episode: int, rewards: Sequence[float], discounts: Sequence[float],
                 with_extras: bool = False) -> None:
  """Feeds one episode of len(rewards) actions to the adder; the last timestep is LAST."""
  base = 100 * episode
  adder.add_first(dm_env.restart(observation(base)))
  num_steps = len(rewards)
  for t, (reward, discount) in enumerate(zip(rewards, discounts)):
    step_type = dm_env.StepType.LAST if t == num_steps - 1 else dm_env.StepType.MID
    timestep = dm_env.TimeStep(step_type, np.float32(reward), np.float32(discount),
                               observation(base + t + 1))
    adder.add(action(base + t), timestep, extras(base + t) if with_extras else ())


def read_all(client: reverb.Client, table: str) -> list:
  """Every item of a queue table, in insertion order, as the nests the adder wrote (unpacked)."""
  info = client.server_info()[table]
  samples = client.sample(table, num_samples=info.current_size, emit_timesteps=False,
                          unpack_as_table_signature=True)
  return [packing.unpack(info.signature, sample.data) for sample in samples]
