"""Reverb table and server factories, with replay that survives a restart.

A uniform table samples every stored item with equal probability and, once `max_size` items are
stored, drops the oldest (FIFO) to make room: the replay of off-policy agents (SAC, MPO, KL-SVG0).
Its rate limiter decides when inserts and samples may proceed:

* `MinSize(min_size_to_sample)` (no `samples_per_insert`): samples wait until the table holds
  `min_size_to_sample` items; after that neither side ever blocks.
* `SampleToInsertRatio` (with `samples_per_insert` = ρ): once the table holds `min_size_to_sample`
  = N items, Reverb tracks the error e = inserts · ρ − samples and blocks any insert or sample that
  would move e out of [N·ρ − b, N·ρ + b], b being the error buffer.

Default error buffer. A learner step draws a batch of B items (e falls by B) and an actor step
inserts one item (e rises by ρ). When one thread interleaves acting and learning, it deadlocks iff
the actor cannot insert (e + ρ > N·ρ + b) while the learner cannot draw a batch (e − B < N·ρ − b),
which some e allows iff 2b < B + ρ. The default b = max(1024, 2ρ) keeps 2b ≥ B + ρ for any batch
B ≤ 1536, and b ≥ 2ρ leaves room for at least two inserts. An interleaved loop must still step the
learner whenever a batch can be drawn; a distributed run needs no more than Reverb's own minimum
b ≥ max(1, ρ).

Replay that survives a restart: with `checkpoint_dir`, the server checkpoints into that directory
(on `checkpoint(client)`) and, at start-up, restores the latest checkpoint found there.
"""

from typing import Optional, Sequence

import reverb

# Smallest default error buffer, in samples: a few learner batches of 256 (module docstring).
_MIN_DEFAULT_ERROR_BUFFER = 1024.0


def make_uniform_table(
    name: str,
    *,
    max_size: int,
    min_size_to_sample: int,
    samples_per_insert: Optional[float] = None,
    error_buffer: Optional[float] = None,
    signature: Optional[reverb.reverb_types.SpecNest] = None,
) -> reverb.Table:
  """Makes a table with uniform sampling, FIFO removal and a MinSize or ratio rate limiter.

  Args:
    name: table name, used by adders and datasets.
    max_size: most items held; the oldest is removed beyond it.
    min_size_to_sample: items needed before the first sample.
    samples_per_insert: target ρ of samples per inserted item; None means no ratio is enforced
      (a `MinSize` limiter).
    error_buffer: allowed deviation b of inserts · ρ − samples, in samples; only with
      `samples_per_insert`. Defaults to max(1024, 2ρ) (module docstring).
    signature: nest of `tf.TensorSpec`, e.g. `NStepTransitionAdder.signature(spec)`.

  Returns:
    The table, to be served by `make_server`.

  Raises:
    ValueError: on sizes below 1, `min_size_to_sample > max_size`, ρ ≤ 0, an error buffer without
      ρ or below max(1, ρ).
  """
  if max_size < 1:
    raise ValueError(f"max_size must be >= 1, got {max_size}.")
  if not 1 <= min_size_to_sample <= max_size:
    raise ValueError(
        f"min_size_to_sample must be in [1, max_size={max_size}], got {min_size_to_sample}.")
  if samples_per_insert is None:
    if error_buffer is not None:
      raise ValueError(
          f"error_buffer={error_buffer} needs samples_per_insert (the MinSize limiter has none).")
    limiter = reverb.rate_limiters.MinSize(min_size_to_sample)
  else:
    if samples_per_insert <= 0:
      raise ValueError(f"samples_per_insert must be > 0, got {samples_per_insert}.")
    if error_buffer is None:
      error_buffer = max(_MIN_DEFAULT_ERROR_BUFFER, 2.0 * samples_per_insert)
    if error_buffer < max(1.0, samples_per_insert):
      raise ValueError(
          f"error_buffer must be >= max(1, samples_per_insert={samples_per_insert}), "
          f"got {error_buffer}: a smaller buffer can block inserts or samples for good.")
    limiter = reverb.rate_limiters.SampleToInsertRatio(
        samples_per_insert=samples_per_insert,
        min_size_to_sample=min_size_to_sample,
        error_buffer=error_buffer)
  return reverb.Table(
      name=name,
      sampler=reverb.selectors.Uniform(),
      remover=reverb.selectors.Fifo(),
      max_size=max_size,
      rate_limiter=limiter,
      signature=signature)


def make_server(
    tables: Sequence[reverb.Table],
    *,
    port: Optional[int] = None,
    checkpoint_dir: Optional[str] = None,
) -> reverb.Server:
  """Starts a Reverb server; with `checkpoint_dir` it first restores the latest checkpoint there.

  Args:
    tables: the tables to serve (names must be unique).
    port: gRPC port; None picks a free one (read it back from `server.port`). The server listens
      on all interfaces: keep the port on a private network.
    checkpoint_dir: directory for Reverb checkpoints. None uses Reverb's default, a fresh temporary
      directory, so nothing is restored.

  Returns:
    The running server; connect with `reverb.Client(f"localhost:{server.port}")`.
  """
  checkpointer = None
  if checkpoint_dir is not None:
    checkpointer = reverb.checkpointers.DefaultCheckpointer(checkpoint_dir)
  return reverb.Server(tables=list(tables), port=port, checkpointer=checkpointer)


def checkpoint(client: reverb.Client) -> str:
  """Checkpoints every table of the client's server; returns the checkpoint's path."""
  return client.checkpoint()
