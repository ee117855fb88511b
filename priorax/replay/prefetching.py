"""A background thread that keeps the next batches ready, on the learner's device.

The equivalent of Acme's `utils.prefetch`: while the learner runs an update, a thread pulls the
next `buffer_size` batches from the source iterator and starts their `jax.device_put` to the device,
so the learner rarely waits for sampling or the host-to-device copy. It imports only JAX (no
TensorFlow or Reverb), so a learner can use it on any iterator of numpy nests.
"""

import queue
import threading
from typing import Any, Iterator, NamedTuple, Optional

import jax

# How often (seconds) a producer blocked on a full buffer checks whether it should stop.
_POLL_INTERVAL_S = 0.05
# How long `close` waits for the producer by default (seconds).
_CLOSE_TIMEOUT_S = 5.0


class _Raised(NamedTuple):
  """An exception raised by the source iterator, re-raised to the consumer."""

  error: BaseException


_END = object()  # Put after the source's last element.


class PrefetchingIterator(Iterator[Any]):
  """Iterates over the source's elements, produced ahead by a daemon thread.

  `close()` (or leaving a `with` block) stops the thread: it exits as soon as it is not blocked
  inside the source's `next()`. A Reverb sample waiting for data (an empty or rate-limited table,
  or a stopped server) cannot be interrupted: `close` then gives up after its timeout and leaves
  the daemon thread behind, which does not keep the process alive. Close the iterator before
  stopping the server it samples from. An error in the source is raised by the consumer's `next()`.
  """

  def __init__(self, iterator: Iterator[Any], buffer_size: int,
               device: Optional[jax.Device] = None):
    if buffer_size < 1:
      raise ValueError(f"buffer_size must be >= 1, got {buffer_size}.")
    self._source = iterator
    self._device = device
    self._buffer: queue.Queue = queue.Queue(maxsize=buffer_size)
    self._stop = threading.Event()
    self._thread = threading.Thread(target=self._produce, name="prefetch", daemon=True)
    self._thread.start()

  def _produce(self) -> None:
    try:
      for element in self._source:
        if self._device is not None:
          element = jax.device_put(element, self._device)
        if not self._put(element):
          return
      self._put(_END)
    except Exception as error:  # pylint: disable=broad-except  # Handed to the consumer.
      self._put(_Raised(error))

  def _put(self, item: Any) -> bool:
    """Blocks until `item` is buffered (True) or the iterator is closed (False)."""
    while not self._stop.is_set():
      try:
        self._buffer.put(item, timeout=_POLL_INTERVAL_S)
        return True
      except queue.Full:
        continue
    return False

  def __next__(self) -> Any:
    if self._stop.is_set():
      raise StopIteration
    item = self._buffer.get()
    if item is _END:
      self._stop.set()
      raise StopIteration
    if isinstance(item, _Raised):
      self._stop.set()
      raise item.error
    return item

  def ready(self) -> bool:
    """Whether `next()` would return at once (a batch is buffered)."""
    return not self._buffer.empty()

  def close(self, timeout: float = _CLOSE_TIMEOUT_S) -> bool:
    """Stops the thread, waiting at most `timeout` seconds; returns whether it has exited."""
    self._stop.set()
    self._thread.join(timeout)
    return not self._thread.is_alive()

  def __enter__(self) -> "PrefetchingIterator":
    return self

  def __exit__(self, *exc_info: Any) -> None:
    self.close()


def prefetch(iterator: Iterator[Any], buffer_size: int = 2,
             device: Optional[jax.Device] = None) -> PrefetchingIterator:
  """Prefetches up to `buffer_size` elements of `iterator`, put on `device` when one is given."""
  return PrefetchingIterator(iterator, buffer_size, device)
