"""Fixtures of the replay tests: in-process Reverb servers, stopped after each test."""

from typing import Iterator

import pytest
import reverb


@pytest.fixture
def make_queue_server() -> Iterator:
  """Starts in-process servers holding one queue table (FIFO, so items come back in order)."""
  servers = []

  def _make(signature) -> reverb.Client:
    server = reverb.Server([reverb.Table.queue("queue", 1000, signature=signature)])
    servers.append(server)
    return reverb.Client(f"localhost:{server.port}")

  yield _make
  for server in servers:
    server.stop()
