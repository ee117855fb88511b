"""Acme's core interfaces, with Acme's names (acme/core.py), implemented without Acme.

An Actor acts in an environment and feeds replay; a Learner consumes batches and owns its training
state; a VariableSource is what actors pull parameters from; a Worker is anything with a `run` loop;
a Saveable is anything the checkpointer can save and restore.
"""

import abc
import itertools
from typing import Any, Generic, List, Optional, Sequence, TypeVar

import dm_env

from priorax import types

T = TypeVar("T")


class Actor(abc.ABC):
  """Interface for an agent that acts: select actions, observe transitions, update parameters."""

  @abc.abstractmethod
  def select_action(self, observation: types.Observation) -> types.NestedArray:
    """Samples an action for the current observation."""

  @abc.abstractmethod
  def observe_first(self, timestep: dm_env.TimeStep) -> None:
    """Records the first timestep of an episode."""

  @abc.abstractmethod
  def observe(self, action: types.NestedArray, next_timestep: dm_env.TimeStep) -> None:
    """Records the action taken and the timestep it led to."""

  @abc.abstractmethod
  def update(self, wait: bool = False) -> None:
    """Refreshes the actor's parameters from its variable source."""


class VariableSource(abc.ABC):
  """Something actors can pull parameters from."""

  @abc.abstractmethod
  def get_variables(self, names: Sequence[str]) -> List[types.NestedArray]:
    """Returns the named variables (e.g. ["policy"]) as nested numpy/jax arrays."""


class Saveable(abc.ABC, Generic[T]):
  """Something whose state the checkpointer can save and restore."""

  @abc.abstractmethod
  def save(self) -> T:
    """Returns the state to be saved."""

  @abc.abstractmethod
  def restore(self, state: T) -> None:
    """Restores from a state returned by `save`."""


class Worker(abc.ABC):
  """Anything that runs a loop (an environment loop, a learner loop)."""

  @abc.abstractmethod
  def run(self, num_steps: Optional[int] = None) -> Any:
    """Runs the loop."""


class ConfigError(ValueError):
  """A bad configuration value or field (reported to the user in one line)."""


class NonFiniteLossError(RuntimeError):
  """A learner's loss became NaN or infinite; carries the learner step where it first happened."""

  def __init__(self, step: int):
    super().__init__(f"non-finite loss at learner step {step}; the last good checkpoint is kept")
    self.step = step


class Learner(VariableSource, Worker, Saveable):
  """Consumes data and updates parameters; owns its training state.

  A learner never imports Reverb or TensorFlow: it takes an iterator of numpy/jax batches, so it
  runs unchanged on a machine with only JAX.
  """

  @abc.abstractmethod
  def step(self) -> None:
    """Performs one update (one batch)."""

  def run(self, num_steps: Optional[int] = None) -> None:
    iterator = range(num_steps) if num_steps is not None else itertools.count()
    for _ in iterator:
      self.step()
