"""Writes labelled state groups (`Demonstration`s) into a Reverb table, one item per group."""

from typing import Any, Optional

import numpy as np
import reverb
import tensorflow as tf
import tree

from priorax import specs
from priorax.agents.cloning import types as cloning_types

# Items written but not yet confirmed by the server before `add_batch` waits.
_MAX_IN_FLIGHT_ITEMS = 16


class DemonstrationAdder:
  """Inserts each group of a batch of `Demonstration`s as one item (uniform priority)."""

  def __init__(self, client: reverb.Client, table: str):
    self._table = table
    self._writer = client.trajectory_writer(num_keep_alive_refs=1)
    # The writer's columns (live views of its history), known after the first append; cached
    # because rebuilding `writer.history` costs as much as an append.
    self._columns: Optional[list] = None

  def add_batch(self, batch: cloning_types.Demonstration) -> int:
    """Writes `batch` (leaves [N, G, ...]); returns N, the number of items written."""
    batch = tree.map_structure(np.asarray, batch)
    count = int(tree.flatten(batch)[0].shape[0])
    for i in range(count):
      self._writer.append(tree.map_structure(lambda x: x[i], batch))  # pylint: disable=cell-var-from-loop
      if self._columns is None:
        self._columns = tree.flatten(self._writer.history)
      self._writer.create_item(self._table, 1.0, [column[-1] for column in self._columns])
      self._writer.flush(block_until_num_items=_MAX_IN_FLIGHT_ITEMS)
    self._writer.flush()
    return count

  @staticmethod
  def signature(environment_spec: specs.EnvironmentSpec, group_size: int) -> Any:
    """A `Demonstration` of `tf.TensorSpec`s: observations [G, ...], labels [G, D], weights [G]."""
    leading = (group_size,)
    observation = tree.map_structure(
        lambda s: tf.TensorSpec(leading + tuple(s.shape), tf.as_dtype(s.dtype)),
        environment_spec.observations)
    label = tf.TensorSpec(leading + tuple(environment_spec.actions.shape), tf.float32)
    return cloning_types.Demonstration(observation=observation, expert_mean=label,
                                       expert_std=label, weight=tf.TensorSpec(leading, tf.float32))
