"""Packed items: one column per dtype, cut back into the item's nest by any reader of the table."""

import numpy as np
import pytest
import reverb
import tensorflow as tf
import tree

from priorax import types
from priorax.replay import NStepTransitionAdder
from priorax.replay import SequenceAdder
from priorax.replay import Step
from priorax.replay import make_dataset
from priorax.replay import packing
from tests.replay.replay_test_utils import EXTRAS_SPEC
from tests.replay.replay_test_utils import SPEC
from tests.replay.replay_test_utils import observation
from tests.replay.replay_test_utils import play_episode

SEQUENCE_LENGTH = 3


def _random_item(signature, rng, outer=()):
  """Random arrays of the item's specs, with `outer` axes in front."""
  def leaf(spec):
    shape = outer + tuple(spec.shape)
    if spec.dtype == tf.bool:
      return rng.random(shape) < 0.5
    return rng.standard_normal(shape).astype(spec.dtype.as_numpy_dtype)
  return tree.map_structure(leaf, signature)


def test_a_transition_is_one_float32_column_holding_every_leaf():
  packed = NStepTransitionAdder.signature(SPEC, EXTRAS_SPEC)
  # x (2 + 1), a (1), r, Γ, x' (2 + 1), log_prob: 10 floats.
  assert [(tuple(s.shape), s.dtype) for s in packed] == [((10,), tf.float32)]
  item = packing.item_signature(packed)
  assert type(item) is types.Transition  # pylint: disable=unidiomatic-typecheck
  assert tuple(item.observation["position"].shape) == (2,)


def test_a_sequence_keeps_its_time_axis_and_gets_a_bool_column():
  packed = SequenceAdder.signature(SPEC, SEQUENCE_LENGTH, EXTRAS_SPEC)
  # x (3), a (1), r, d, mask, log_prob: 8 floats per step; start_of_episode: 1 bool.
  assert [(tuple(s.shape), s.dtype) for s in packed] == [
      ((SEQUENCE_LENGTH, 8), tf.float32), ((SEQUENCE_LENGTH, 1), tf.bool)]
  assert type(packing.item_signature(packed)) is Step  # pylint: disable=unidiomatic-typecheck


def test_an_unpacked_signature_is_recognised_as_such():
  assert packing.item_signature((tf.TensorSpec([3], tf.float32),)) is None
  assert packing.item_signature({"x": tf.TensorSpec([3], tf.float32)}) is None
  with pytest.raises(ValueError, match="not a packed table signature"):
    packing.unpack((tf.TensorSpec([3], tf.float32),), [np.zeros(3, np.float32)])


@pytest.mark.parametrize("outer", [(), (4,), (2, 5)], ids=["item", "batch", "two_axes"])
def test_unpack_inverts_the_packer_step_by_step(outer):
  packed = SequenceAdder.signature(SPEC, SEQUENCE_LENGTH, EXTRAS_SPEC)
  item_signature = packing.item_signature(packed)
  rng = np.random.default_rng(0)
  items = _random_item(item_signature, rng, outer)
  # Pack each step of each item as the writer does, then stack back to [*outer, L, size].
  packer = packing.StepPacker(packed)
  steps = np.ndindex(*outer, SEQUENCE_LENGTH)
  columns = [np.zeros(outer + tuple(s.shape), s.dtype.as_numpy_dtype) for s in packed]
  for index in steps:
    leaves = [np.asarray(leaf[index]) for leaf in tree.flatten(items)]
    for column, values in zip(columns, packer(leaves)):
      column[index] = values
  unpacked = packing.unpack(packed, columns)
  assert type(unpacked) is Step  # pylint: disable=unidiomatic-typecheck
  tree.assert_same_structure(unpacked, items)
  for got, want in zip(tree.flatten(unpacked), tree.flatten(items)):
    assert got.dtype == want.dtype
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("leaf, value, message", [
    ("action", np.zeros(1, np.float64),
     r"'action' is float64\[1\], the table expects float32\[1\]"),
    ("reward", np.zeros(2, np.float32), r"'reward' is float32\[2\], the table expects float32\[\]"),
])
def test_the_packer_names_a_leaf_that_does_not_fit(leaf, value, message):
  packed = NStepTransitionAdder.signature(SPEC)
  transition = packing.item_signature(packed)
  good = tree.map_structure(lambda s: np.zeros(s.shape, s.dtype.as_numpy_dtype), transition)
  packer = packing.StepPacker(packed)
  packer(tree.flatten(good))
  with pytest.raises(ValueError, match=message):
    packer(tree.flatten(good._replace(**{leaf: value})))


def test_make_dataset_cuts_batches_back_into_transitions():
  server = reverb.Server([reverb.Table.queue("queue", 100,
                                             signature=NStepTransitionAdder.signature(SPEC))])
  try:
    client = reverb.Client(f"localhost:{server.port}")
    adder = NStepTransitionAdder(client, "queue", n_step=1, discount=0.5)
    play_episode(adder, 0, [1.0, 2.0, 3.0, 4.0], [1.0] * 4)
    batch = next(make_dataset(f"localhost:{server.port}", "queue", 4).as_numpy_iterator())
    assert type(batch) is types.Transition  # pylint: disable=unidiomatic-typecheck
    np.testing.assert_array_equal(batch.observation["position"],
                                  np.stack([observation(t)["position"] for t in range(4)]))
    np.testing.assert_array_equal(batch.next_observation["velocity"],
                                  np.stack([observation(t + 1)["velocity"] for t in range(4)]))
    np.testing.assert_allclose(batch.reward, [1.0, 2.0, 3.0, 4.0])
    np.testing.assert_allclose(batch.discount, [0.5] * 4)
  finally:
    server.stop()


def test_an_adder_writes_leaf_by_leaf_into_an_unpacked_table(make_queue_server):
  # A table made with the item's own nest (e.g. restored from a replay checkpoint written before
  # packing) gets one column per leaf, as it asks.
  unpacked = packing.item_signature(NStepTransitionAdder.signature(SPEC))
  client = make_queue_server(unpacked)
  adder = NStepTransitionAdder(client, "queue", n_step=1, discount=0.5)
  play_episode(adder, 0, [1.0, 2.0], [1.0, 1.0])
  size = client.server_info()["queue"].current_size
  items = [sample.data for sample in client.sample("queue", num_samples=size,
                                                   emit_timesteps=False,
                                                   unpack_as_table_signature=True)]
  assert [float(item.reward) for item in items] == [1.0, 2.0]
  np.testing.assert_array_equal(items[1].next_observation["position"], observation(2)["position"])


def test_an_adder_for_a_missing_table_names_the_tables_there(make_queue_server):
  client = make_queue_server(NStepTransitionAdder.signature(SPEC))
  with pytest.raises(ValueError, match=r"no table 'replay'; it has \['queue'\]"):
    NStepTransitionAdder(client, "replay", n_step=1, discount=0.5)
