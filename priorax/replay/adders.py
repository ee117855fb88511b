"""Adders: write an actor's experience into Reverb tables (Acme's adder API, without Acme).

An actor calls `add_first(timestep)` at the start of an episode, then `add(action, next_timestep,
extras)` once per environment step; `reset()` drops a partly written episode. Time indexing, shared
by both adders: an episode of T actions is x₀, a₀, (r₀, d₀, x₁), a₁, …, x_T; the timestep returned
after a_t carries r_t, the environment discount d_t and x_{t+1}, and `add(a_t, timestep_{t+1}, e_t)`
records them. d_t = 0 after a terminal step; a truncation (a dm_control time limit) ends the
episode with d = 1, so values keep bootstrapping from x_T.

NStepTransitionAdder stores one `priorax.types.Transition` (x_t, a_t, R_t, Γ_t, x_{t+m}, e_t) per
step t of the episode, with agent discount γ and m = min(n, T − t):

  R_t = Σ_{k<m} γᵏ (Π_{j<k} d_{t+j}) r_{t+k},    Γ_t = Π_{k<m} γ d_{t+k}.

Transition t is written once x_{t+n} arrives; at the last step every pending transition is
written, those of the last n − 1 steps with m = n − 1, …, 1, all bootstrapping from x_T. A
terminal step makes Γ = 0 for every transition that includes it; a truncation keeps Γ = γᵐ when
all d = 1. No transition spans two episodes. The sums are computed in numpy and each transition
is one appended step holding all its fields (x_{t+m} is stored again as next_observation), so an
episode of T steps costs T appends and T items; items are a single step, so the writer keeps one
step alive.

SequenceAdder stores overlapping, fixed-length sequences of `Step`s (see `priorax.replay.types`):
steps 0, …, T of the episode, T being the extra step that holds the final observation x_T with
zero action, reward, discount and extras. A sequence of length L starts at every step s that is a
multiple of the period p ≤ L and is written once step s + L − 1 exists; consecutive sequences
share L − p steps. At episode end, if step T is in no written sequence, one more sequence is
written (unless `pad_end_of_episode=False`): the one starting at the next multiple s* of p,
zero-padded (mask 0) from T + 1 to s* + L − 1, so every step of the episode is in some sequence.
With p = L, that sequence can hold x_T alone, and a transition across two sequences is in none.
With `start_padding` B, B zero steps (mask 0) precede step 0 and the grid above counts them (a
learner that burns in B steps then trains on each episode from its first step). Each step is
appended once; the writer keeps L steps alive.

Both adders hold observations by reference until they are written (n steps, or one step): the
environment must return fresh arrays at each step, as dm_control does. Rewards and discounts are
arrays (scalars or a fixed shape) of the dtypes in the environment spec, which the table
signature is built from.

Both adders write through `_Writer`, a lean driver of Reverb's C++ trajectory writer: the
Python `reverb.TrajectoryWriter` spends more time per step in its own bookkeeping than the C++
calls take, and an actor pays it at every environment step. Their table signatures are packed
(`priorax.replay.packing`): a step is appended as one column per dtype rather than one per leaf,
which cuts Reverb's work per item several-fold; readers get the item's nest back from
`make_dataset` or `packing.unpack`.
"""

import collections
from typing import Any, Deque, NamedTuple, Optional, Tuple

import dm_env
import numpy as np
import reverb
import tensorflow as tf
import tree

from priorax import specs
from priorax import types
from priorax.replay import packing
from priorax.replay.types import Step

# Items an adder may have written but not yet seen confirmed by the server; beyond it `add` blocks,
# so an actor cannot run ahead of the table's rate limiter by more than this. A transition is one
# environment step: a few dozen in flight let the actor ride out the server's scheduling jitter
# (on a busy 2-core machine, 50 instead of 5 took dmc:cartpole-swingup's acting loop from ≈ 920 to
# ≈ 1,460 steps/s; Reverb logs a warning from 50 pending items, hence 32). A sequence spans many
# steps, so a few are as much slack.
_MAX_IN_FLIGHT_TRANSITIONS = 32
_MAX_IN_FLIGHT_SEQUENCES = 5


class _PendingStep(NamedTuple):
  """(x_t, a_t, r_t, d_t, e_t) of a step whose n-step transition is not yet written."""

  observation: types.NestedArray
  action: types.NestedArray
  reward: np.ndarray
  discount: np.ndarray
  extras: types.NestedArray


def _as_numpy(nest: types.NestedArray) -> types.NestedArray:
  """Converts jax arrays and python scalars; numpy leaves are kept as they are (no copy).

  An array, or a dict of arrays (a dm_control observation), skips `tree.map_structure`, which
  costs more than the rest of a step's bookkeeping.
  """
  # Exact ndarrays only: np.asarray would convert a subclass.
  # pylint: disable=unidiomatic-typecheck
  if type(nest) is np.ndarray:
    return nest
  if isinstance(nest, dict) and all(type(x) is np.ndarray for x in nest.values()):
    return nest.copy()
  return tree.map_structure(np.asarray, nest)


def _tensor_specs(spec_nest: Any, leading_shape: tuple[int, ...] = ()) -> Any:
  """dm_env specs (or anything with shape and dtype) -> tf.TensorSpec, with a leading shape."""
  return tree.map_structure(
      lambda s: tf.TensorSpec(leading_shape + tuple(s.shape), tf.as_dtype(s.dtype)), spec_nest)


class _Writer:
  """Appends flat steps to Reverb's C++ trajectory writer and makes items of its last steps.

  The C++ writer is the one under reverb's Python `TrajectoryWriter` (dm-reverb is pinned in
  constraints.txt). That wrapper flattens every step with its paths, keeps Python column
  histories and builds trajectory columns per item: about twice the time of the C++ calls. Here a
  step is one `tree.flatten` list (the same order for every step of a fixed structure) and the
  references of each column's last cells are kept in a deque as long as the writer keeps them
  alive. For a packed table the list is packed first (`packing.StepPacker`, which checks each
  leaf's dtype and shape); appends and items are checked by the C++ writer as before (dtypes and
  shapes per column; items against the table signature).
  """

  def __init__(self, client: reverb.Client, table: str, priority: float, num_keep_alive_refs: int,
               max_in_flight_items: int):
    self._table = table
    self._priority = priority
    self._max_in_flight_items = max_in_flight_items
    # A packed table (the adders' own signatures) gets each step as one column per dtype.
    tables = client.server_info()
    if table not in tables:
      raise ValueError(f"the Reverb server has no table {table!r}; it has {sorted(tables)}")
    table_signature = tables[table].signature
    self._pack = (packing.StepPacker(table_signature)
                  if packing.item_signature(table_signature) is not None else None)
    # Kept: the Python wrapper closes the C++ writer when it is deleted.
    self._wrapper = client.trajectory_writer(num_keep_alive_refs=num_keep_alive_refs)
    self._writer = self._wrapper._writer  # pylint: disable=protected-access
    self._num_keep_alive_refs = num_keep_alive_refs
    # Per column (a leaf of a step, or a dtype group of a packed one), references to its last
    # appended cells.
    self._columns: list[Deque[Any]] = []
    self._num_leaves: Optional[int] = None  # Leaves of the first step appended.

  def append(self, step: Any, item_length: int = 0, squeeze: bool = False) -> None:
    """Appends `step`; with `item_length` L > 0, inserts an item of the last L steps of every
    column, then waits while more than `max_in_flight_items` items are unconfirmed. `squeeze`
    (with L = 1) drops the time axis: the item is the step itself."""
    leaves = tree.flatten(step)
    if self._num_leaves is None:
      self._num_leaves = len(leaves)
    elif len(leaves) != self._num_leaves:
      raise ValueError(f"a step of {len(leaves)} arrays after steps of {self._num_leaves}: "
                       f"every step must have the structure of the first, got {step!r}")
    references = self._writer.Append(self._pack(leaves) if self._pack else leaves)
    if not self._columns:
      self._columns = [collections.deque(maxlen=self._num_keep_alive_refs) for _ in references]
    for column, reference in zip(self._columns, references):
      column.append(reference)
    if item_length:
      trajectory = ([[column[-1]] for column in self._columns] if item_length == 1 else
                    [list(column)[-item_length:] for column in self._columns])
      self._writer.CreateItem(self._table, self._priority, trajectory,
                              [squeeze] * len(trajectory))
      self._writer.Flush(self._max_in_flight_items, -1)  # -1: no timeout.

  def flush(self, timeout_s: float) -> bool:
    """Waits up to `timeout_s` until every item inserted so far is confirmed by the server (the
    episode goes on); returns whether they all were. A rate limiter holds inserts back while the
    table's samples lag behind, so without a learner sampling this wait may never end."""
    try:
      self._writer.Flush(0, max(1, int(timeout_s * 1000)))  # 0: no item may stay in flight.
    except RuntimeError as e:
      if "Timeout exceeded" not in str(e):
        raise
      return False
    return True

  def end_episode(self) -> None:
    """Waits until every item is confirmed; clears the history (no item spans two episodes)."""
    self._writer.EndEpisode(True, None)  # True: clear the buffers; None: no timeout.
    for column in self._columns:
      column.clear()


class _ReverbAdder:
  """What both adders share: the writer, the observation awaiting its action, `reset`."""

  def __init__(self, client: reverb.Client, table: str, priority: float, num_keep_alive_refs: int,
               max_in_flight_items: int):
    self._writer = _Writer(client, table, priority, num_keep_alive_refs, max_in_flight_items)
    # x_t, the observation that the next `add` call's action was taken from; None between episodes.
    self._observation: Optional[types.NestedArray] = None

  def add_first(self, timestep: dm_env.TimeStep) -> None:
    """Starts an episode at its first timestep (x₀)."""
    if not timestep.first():
      raise ValueError(f"add_first needs a FIRST timestep, got step_type={timestep.step_type}.")
    if self._observation is not None:
      raise ValueError("add_first called inside an episode; call reset() to drop it first.")
    self._observation = _as_numpy(timestep.observation)

  def reset(self) -> None:
    """Drops what is pending of the current episode (written items are kept)."""
    self._observation = None
    self._writer.end_episode()

  def flush(self, timeout_s: float = 60.0) -> bool:
    """Waits up to `timeout_s` until the items inserted so far are in the table, e.g. before a
    replay checkpoint (up to `max_in_flight_items` may otherwise still be on their way); returns
    whether they all are. Call it while a learner still samples: the rate limiter may hold
    inserts back until it does."""
    return self._writer.flush(timeout_s)

  def _check_add(self, next_timestep: dm_env.TimeStep) -> None:
    if self._observation is None:
      raise ValueError("add called outside an episode; call add_first first.")
    if next_timestep.first():
      raise ValueError("add got a FIRST timestep; start a new episode with add_first.")


class NStepTransitionAdder(_ReverbAdder):
  """Writes n-step transitions (module docstring) as single `Transition` items."""

  def __init__(
      self,
      client: reverb.Client,
      table: str,
      *,
      n_step: int,
      discount: float,
      priority: float = 1.0,
  ):
    """Makes the adder.

    Args:
      client: client of the server holding `table`.
      table: table name; its signature should be `NStepTransitionAdder.signature(spec)`.
      n_step: n ≥ 1, the most environment steps a transition spans.
      discount: agent discount γ ∈ [0, 1], folded into the stored discount Γ.
      priority: priority of every item.
    """
    if n_step < 1:
      raise ValueError(f"n_step must be >= 1, got {n_step}.")
    if not 0.0 <= discount <= 1.0:
      raise ValueError(f"discount must be in [0, 1], got {discount}.")
    super().__init__(client, table, priority, num_keep_alive_refs=1,
                     max_in_flight_items=_MAX_IN_FLIGHT_TRANSITIONS)
    self._n_step = n_step
    self._discount = discount
    self._pending: Deque[_PendingStep] = collections.deque()

  def add(
      self,
      action: types.NestedArray,
      next_timestep: dm_env.TimeStep,
      extras: types.NestedArray = (),
  ) -> None:
    """Records a_t and the timestep it led to; writes the transitions that became complete."""
    self._check_add(next_timestep)
    self._pending.append(
        _PendingStep(
            observation=self._observation,
            action=_as_numpy(action),
            reward=np.asarray(next_timestep.reward),
            discount=np.asarray(next_timestep.discount),
            extras=_as_numpy(extras)))
    self._observation = _as_numpy(next_timestep.observation)
    if next_timestep.last():
      while self._pending:
        self._write_oldest()
      self._observation = None
      self._writer.end_episode()
    elif len(self._pending) == self._n_step:
      self._write_oldest()

  def reset(self) -> None:
    self._pending.clear()
    super().reset()

  def _write_oldest(self) -> None:
    """Writes the transition of the oldest pending step t, bootstrapping from x_{t+m}."""
    first = self._pending[0]
    # scale = γᵏ Π_{j<k} d_{t+j} before step k; after the last step it is Γ_t.
    n_step_return = np.zeros_like(first.reward, dtype=np.float64)
    scale = np.ones_like(first.discount, dtype=np.float64)
    for step in self._pending:
      n_step_return = n_step_return + scale * step.reward
      scale = scale * self._discount * step.discount
    self._pending.popleft()
    self._writer.append(
        types.Transition(
            observation=first.observation,
            action=first.action,
            reward=n_step_return.astype(first.reward.dtype),
            discount=scale.astype(first.discount.dtype),
            next_observation=self._observation,
            extras=first.extras),
        item_length=1, squeeze=True)

  @staticmethod
  def signature(
      environment_spec: specs.EnvironmentSpec, extras_spec: Any = ()
  ) -> Tuple[tf.TensorSpec, ...]:
    """The table signature: a `Transition` of `tf.TensorSpec`s with the spec shapes and dtypes,
    packed into one column per dtype (`priorax.replay.packing`; `make_dataset` unpacks it).

    Args:
      environment_spec: the environment's specs; rewards and discounts keep their dtypes, so the
        timesteps given to `add` must match them.
      extras_spec: nest of specs (anything with shape and dtype) of the extras given to `add`.
    """
    observation = _tensor_specs(environment_spec.observations)
    return packing.pack_signature(types.Transition(
        observation=observation,
        action=_tensor_specs(environment_spec.actions),
        reward=_tensor_specs(environment_spec.rewards),
        discount=_tensor_specs(environment_spec.discounts),
        next_observation=observation,
        extras=_tensor_specs(extras_spec)))


class SequenceAdder(_ReverbAdder):
  """Writes fixed-length, overlapping sequences of `Step`s (module docstring)."""

  def __init__(
      self,
      client: reverb.Client,
      table: str,
      *,
      sequence_length: int,
      period: int,
      pad_end_of_episode: bool = True,
      start_padding: int = 0,
      priority: float = 1.0,
  ):
    """Makes the adder.

    Args:
      client: client of the server holding `table`.
      table: table name; its signature should be `SequenceAdder.signature(spec, sequence_length)`.
      sequence_length: L ≥ 1, steps per sequence.
      period: p ∈ [1, L], steps between the starts of consecutive sequences.
      pad_end_of_episode: write a last, zero-padded sequence so that every step of an episode is
        in some sequence; False writes full sequences only (an episode shorter than L writes none).
      start_padding: B ∈ [0, L), zero steps (mask 0) written before each episode's first step;
        sequences then start at episode steps kp − B. For a learner that only burns in the first
        B steps of a sequence (R2D2), this puts the trained part of the first sequence on the
        episode's first step, which it otherwise never trains on (B = its burn-in); the burn-in
        over padding is harmless, the state being reset at the episode's first step.
      priority: priority of every item.
    """
    if sequence_length < 1:
      raise ValueError(f"sequence_length must be >= 1, got {sequence_length}.")
    if not 1 <= period <= sequence_length:
      raise ValueError(f"period must be in [1, sequence_length={sequence_length}], got {period}.")
    if not 0 <= start_padding < sequence_length:
      raise ValueError(f"start_padding must be in [0, sequence_length={sequence_length}), got "
                       f"{start_padding}.")
    super().__init__(client, table, priority, num_keep_alive_refs=sequence_length,
                     max_in_flight_items=_MAX_IN_FLIGHT_SEQUENCES)
    self._sequence_length = sequence_length
    self._period = period
    self._pad_end_of_episode = pad_end_of_episode
    self._start_padding = start_padding
    # Steps of the current episode appended so far, start padding included (the index of the
    # next step).
    self._num_steps = 0

  def add(
      self,
      action: types.NestedArray,
      next_timestep: dm_env.TimeStep,
      extras: types.NestedArray = (),
  ) -> None:
    """Appends step t = (x_t, a_t, r_t, d_t, e_t); writes a sequence if one ends at step t."""
    self._check_add(next_timestep)
    first = self._num_steps == 0
    step = Step(
        observation=self._observation,
        action=_as_numpy(action),
        reward=np.asarray(next_timestep.reward),
        discount=np.asarray(next_timestep.discount),
        start_of_episode=np.asarray(first),
        mask=np.ones((), np.float32),
        extras=_as_numpy(extras))
    if first:
      zeros = tree.map_structure(np.zeros_like, step)
      for _ in range(self._start_padding):
        self._append_step(zeros)
    self._append_step(step)
    self._observation = _as_numpy(next_timestep.observation)
    if next_timestep.last():
      self._end_episode(step)

  def reset(self) -> None:
    self._num_steps = 0
    super().reset()

  def _append_step(self, step: Step) -> bool:
    """Appends a step; writes the sequence ending at it if that starts on the period grid.

    Returns:
      Whether a sequence was written.
    """
    first = self._num_steps - self._sequence_length + 1  # Start of a sequence ending here.
    self._num_steps += 1
    written = first >= 0 and first % self._period == 0
    self._writer.append(step, self._sequence_length if written else 0)
    return written

  def _end_episode(self, last_step: Step) -> None:
    """Appends the final observation's step T, then the padded sequence covering T if needed."""
    zeros = tree.map_structure(np.zeros_like, last_step)
    covered = self._append_step(
        zeros._replace(observation=self._observation, mask=np.ones((), np.float32)))
    final = self._num_steps - 1  # T.
    if self._pad_end_of_episode and not covered:
      # s* = the first multiple of p whose sequence reaches past T (0 if no sequence was full).
      num_full = max(0, (final - self._sequence_length + 1) // self._period + 1)
      padded_start = num_full * self._period
      for _ in range(padded_start + self._sequence_length - 1 - final):
        self._append_step(zeros)
    self._observation = None
    self._num_steps = 0
    self._writer.end_episode()

  @staticmethod
  def signature(
      environment_spec: specs.EnvironmentSpec,
      sequence_length: int,
      extras_spec: Any = (),
  ) -> Tuple[tf.TensorSpec, ...]:
    """The table signature: a `Step` of `tf.TensorSpec`s of shape [L, *spec.shape], packed into
    one [L, size] column per dtype (`priorax.replay.packing`; `make_dataset` unpacks it).

    Args:
      environment_spec: the environment's specs; rewards and discounts keep their dtypes, so the
        timesteps given to `add` must match them.
      sequence_length: L, as given to the adder.
      extras_spec: nest of specs (anything with shape and dtype) of the extras given to `add`.
    """
    leading = (sequence_length,)
    return packing.pack_signature(Step(
        observation=_tensor_specs(environment_spec.observations, leading),
        action=_tensor_specs(environment_spec.actions, leading),
        reward=_tensor_specs(environment_spec.rewards, leading),
        discount=_tensor_specs(environment_spec.discounts, leading),
        start_of_episode=tf.TensorSpec(leading, tf.bool),
        mask=tf.TensorSpec(leading, tf.float32),
        extras=_tensor_specs(extras_spec, leading)), leading_shape=leading)
