"""Dataset iterators over a uniform table, device prefetch, and the prefetch thread itself."""

import threading
import time

import jax
import numpy as np
import pytest
import reverb

from priorax import types
from priorax.replay import NStepTransitionAdder
from priorax.replay import PrefetchingIterator
from priorax.replay import SequenceAdder
from priorax.replay import Step
from priorax.replay import make_dataset_iterator
from priorax.replay import make_server
from priorax.replay import make_uniform_table
from priorax.replay import prefetch
from tests.replay.replay_test_utils import EXTRAS_SPEC
from tests.replay.replay_test_utils import SPEC
from tests.replay.replay_test_utils import play_episode

BATCH_SIZE = 4
SEQUENCE_LENGTH = 3


@pytest.fixture(scope="module")
def server_address():
  """A server with a transition table and a sequence table, each filled by one adder."""
  server = make_server([
      make_uniform_table("transitions", max_size=100, min_size_to_sample=1,
                         signature=NStepTransitionAdder.signature(SPEC, EXTRAS_SPEC)),
      make_uniform_table("sequences", max_size=100, min_size_to_sample=1,
                         signature=SequenceAdder.signature(SPEC, SEQUENCE_LENGTH, EXTRAS_SPEC)),
  ])
  client = reverb.Client(f"localhost:{server.port}")
  adders = [NStepTransitionAdder(client, "transitions", n_step=3, discount=0.99),
            SequenceAdder(client, "sequences", sequence_length=SEQUENCE_LENGTH, period=2)]
  for adder in adders:
    for episode in range(2):
      play_episode(adder, episode, [1.0] * 5, [1.0] * 4 + [0.0], with_extras=True)
  yield f"localhost:{server.port}"
  server.stop()


def test_transition_batches(server_address):
  batch = next(make_dataset_iterator(server_address, "transitions", BATCH_SIZE))
  assert isinstance(batch, types.Transition)
  assert isinstance(batch.reward, np.ndarray)
  shapes = {
      "position": batch.observation["position"].shape,
      "next_velocity": batch.next_observation["velocity"].shape,
      "action": batch.action.shape,
      "reward": batch.reward.shape,
      "discount": batch.discount.shape,
      "log_prob": batch.extras["log_prob"].shape,
  }
  assert shapes == {"position": (4, 2), "next_velocity": (4, 1), "action": (4, 1),
                    "reward": (4,), "discount": (4,), "log_prob": (4,)}
  assert batch.reward.dtype == np.float32


def test_sequence_batches(server_address):
  batch = next(make_dataset_iterator(server_address, "sequences", BATCH_SIZE))
  assert isinstance(batch, Step)
  assert batch.observation["position"].shape == (BATCH_SIZE, SEQUENCE_LENGTH, 2)
  assert batch.start_of_episode.dtype == np.bool_
  assert batch.mask.shape == (BATCH_SIZE, SEQUENCE_LENGTH)


def test_device_prefetch(server_address):
  device = jax.devices()[0]
  iterator = make_dataset_iterator(server_address, "transitions", BATCH_SIZE, device=device)
  for _ in range(3):
    batch = next(iterator)
    assert isinstance(batch, types.Transition)
    assert isinstance(batch.reward, jax.Array)
    assert batch.reward.devices() == {device}
    assert batch.observation["position"].shape == (BATCH_SIZE, 2)
  assert iterator.close()


def test_prefetch_yields_every_element_then_stops():
  with prefetch(iter(range(10)), buffer_size=3) as iterator:
    assert list(iterator) == list(range(10))


def test_prefetch_raises_source_errors():

  def failing():
    yield 1
    raise KeyError("broken source")

  iterator = prefetch(failing(), buffer_size=2)
  assert next(iterator) == 1
  with pytest.raises(KeyError, match="broken source"):
    next(iterator)


def test_prefetch_close_stops_a_producer_blocked_on_a_full_buffer():
  produced = threading.Event()

  def endless():
    while True:
      produced.set()
      yield np.zeros(3)

  iterator = PrefetchingIterator(endless(), buffer_size=1)
  assert produced.wait(5.0)
  assert iterator.close()
  with pytest.raises(StopIteration):
    next(iterator)


def test_prefetch_close_gives_up_on_a_source_blocked_in_next():
  release = threading.Event()

  def gated():
    release.wait()
    yield 1

  iterator = prefetch(gated(), buffer_size=1)
  assert not iterator.close(timeout=0.1)  # Blocked inside the source: left behind.
  release.set()
  assert iterator.close()  # Once the source returns, the thread sees the stop and exits.


def test_prefetch_ready_once_an_element_is_buffered():
  release = threading.Event()

  def gated():
    release.wait()
    yield 1

  with prefetch(gated(), buffer_size=1) as iterator:
    assert not iterator.ready()
    release.set()
    deadline = time.monotonic() + 5.0
    while not iterator.ready() and time.monotonic() < deadline:
      time.sleep(0.01)
    assert iterator.ready()
    assert next(iterator) == 1
