"""The accelerator benchmark's declared task shapes are dm_control's, and one tiny measurement runs.

`TASK_SHAPES` stands in for the environments on machines without dm_control; if dm_control's specs
change, this test says which task disagrees.
"""

import math

import jax
import pytest

from benchmarks import learner_accelerator
from priorax import envs
from priorax import specs


def _summary(spec: specs.EnvironmentSpec):
  return ([(k, s.shape, s.dtype) for k, s in spec.observations.items()],
          (spec.actions.shape, spec.actions.dtype, float(spec.actions.minimum.min()),
           float(spec.actions.maximum.max())),
          (spec.rewards.shape, spec.rewards.dtype), (spec.discounts.shape, spec.discounts.dtype))


@pytest.mark.parametrize("task", sorted(learner_accelerator.TASK_SHAPES))
def test_declared_shapes_match_the_environment(task):
  real = specs.make_environment_spec(envs.make_environment(task, seed=0))
  assert _summary(learner_accelerator.environment_spec(task)) == _summary(real)


def test_unknown_task_names_the_known_ones():
  with pytest.raises(ValueError, match="dmc:walker-walk"):
    learner_accelerator.environment_spec("dmc:walker-run")


def test_one_tiny_measurement_is_finite():
  measured = learner_accelerator.measure("dmc:cartpole-swingup", jax.devices("cpu")[0],
                                         batch_size=8, width=8, seconds=0.05, seed=0)
  assert set(measured) == {"compile_s", "learner_updates_per_s", "learner_transitions_per_s"}
  assert all(math.isfinite(v) and v > 0 for v in measured.values()), measured
  assert measured["learner_transitions_per_s"] == pytest.approx(
      8 * measured["learner_updates_per_s"])
