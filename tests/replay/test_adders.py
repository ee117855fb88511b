"""Adders against an in-process Reverb queue: an episode in, the items it must store out.

The expected items are written by hand from the maths in `priorax/replay/adders.py`. Step ids
follow `replay_test_utils`: step t of episode e has id 100·e + t.
"""

import dm_env
import numpy as np
import pytest
import reverb
import tree

from priorax import types
from priorax.replay import NStepTransitionAdder
from priorax.replay import SequenceAdder
from priorax.replay import Step
from tests.replay.replay_test_utils import EXTRAS_SPEC
from tests.replay.replay_test_utils import SPEC
from tests.replay.replay_test_utils import action
from tests.replay.replay_test_utils import extras
from tests.replay.replay_test_utils import observation
from tests.replay.replay_test_utils import play_episode
from tests.replay.replay_test_utils import read_all

# Each case: adder arguments, episodes (rewards r_t, env discounts d_t after each action), and the
# expected transitions as (id of x_t, R_t, Γ_t, id of x_{t+m}).
N_STEP_CASES = {
    "n1_terminal": dict(
        n_step=1, discount=0.9,
        episodes=[([1.0, 2.0, 3.0], [1.0, 1.0, 0.0])],
        expected=[(0, 1.0, 0.9, 1), (1, 2.0, 0.9, 2), (2, 3.0, 0.0, 3)]),
    "n1_truncated": dict(
        n_step=1, discount=0.9,
        episodes=[([1.0, 2.0], [1.0, 1.0])],
        expected=[(0, 1.0, 0.9, 1), (1, 2.0, 0.9, 2)]),
    # R_0 = 1 + .5·2 + .25·3, R_1 = 2 + .5·3 + .25·4; the tail bootstraps from x_4 with m = 2, 1.
    "n3_terminal": dict(
        n_step=3, discount=0.5,
        episodes=[([1.0, 2.0, 3.0, 4.0], [1.0, 1.0, 1.0, 0.0])],
        expected=[(0, 2.75, 0.125, 3), (1, 4.5, 0.0, 4), (2, 5.0, 0.0, 4), (3, 4.0, 0.0, 4)]),
    "n3_truncated": dict(
        n_step=3, discount=0.5,
        episodes=[([1.0, 2.0, 3.0, 4.0], [1.0, 1.0, 1.0, 1.0])],
        expected=[(0, 2.75, 0.125, 3), (1, 4.5, 0.125, 4), (2, 5.0, 0.25, 4), (3, 4.0, 0.5, 4)]),
    # d_1 = .5 scales what follows step 1: R_0 = 1 + .5·2 + .25·.5·3, Γ_0 = .125·.5.
    "n3_env_discount": dict(
        n_step=3, discount=0.5,
        episodes=[([1.0, 2.0, 3.0, 4.0], [1.0, 0.5, 1.0, 1.0])],
        expected=[(0, 2.375, 0.0625, 3), (1, 3.25, 0.0625, 4), (2, 5.0, 0.25, 4),
                  (3, 4.0, 0.5, 4)]),
    "n3_episode_shorter_than_n": dict(
        n_step=3, discount=0.5,
        episodes=[([1.0, 2.0], [1.0, 0.0])],
        expected=[(0, 2.0, 0.0, 2), (1, 2.0, 0.0, 2)]),
    # Episode 1 starts at id 100: no transition bootstraps across the boundary.
    "n2_two_episodes": dict(
        n_step=2, discount=0.5,
        episodes=[([1.0, 2.0, 3.0], [1.0, 1.0, 0.0]), ([4.0, 5.0], [1.0, 1.0])],
        expected=[(0, 2.0, 0.25, 2), (1, 3.5, 0.0, 3), (2, 3.0, 0.0, 3),
                  (100, 6.5, 0.25, 102), (101, 5.0, 0.5, 102)]),
}


def _transition(i: int, reward: float, discount: float, next_i: int,
                with_extras: bool) -> types.Transition:
  return types.Transition(
      observation=observation(i),
      action=action(i),
      reward=np.float32(reward),
      discount=np.float32(discount),
      next_observation=observation(next_i),
      extras=extras(i) if with_extras else ())


def _assert_items_equal(actual_items, expected_items) -> None:
  assert len(actual_items) == len(expected_items)
  for actual, expected in zip(actual_items, expected_items):
    assert type(actual).__name__ == type(expected).__name__
    tree.assert_same_structure(actual, expected, check_types=False)
    for got, want in zip(tree.flatten(actual), tree.flatten(expected)):
      assert got.dtype == np.asarray(want).dtype
      np.testing.assert_allclose(got, want, rtol=1e-6)


@pytest.mark.parametrize("with_extras", [False, True], ids=["no_extras", "extras"])
@pytest.mark.parametrize("case", N_STEP_CASES.values(), ids=N_STEP_CASES.keys())
def test_n_step_transitions(make_queue_server, case, with_extras):
  extras_spec = EXTRAS_SPEC if with_extras else ()
  client = make_queue_server(NStepTransitionAdder.signature(SPEC, extras_spec))
  adder = NStepTransitionAdder(client, "queue", n_step=case["n_step"], discount=case["discount"])
  for episode, (rewards, discounts) in enumerate(case["episodes"]):
    play_episode(adder, episode, rewards, discounts, with_extras)
  expected = [_transition(*row, with_extras) for row in case["expected"]]
  _assert_items_equal(read_all(client, "queue"), expected)


def test_n_step_reset_drops_pending_steps(make_queue_server):
  client = make_queue_server(NStepTransitionAdder.signature(SPEC))
  adder = NStepTransitionAdder(client, "queue", n_step=2, discount=0.5)
  adder.add_first(dm_env.restart(observation(0)))
  adder.add(action(0), dm_env.transition(np.float32(1.0), observation(1), np.float32(1.0)))
  adder.reset()
  play_episode(adder, 1, [4.0], [0.0])
  _assert_items_equal(read_all(client, "queue"), [_transition(100, 4.0, 0.0, 101, False)])


# Each case: adder arguments, episodes as (rewards, discounts), and the expected sequences as
# step indices t of an episode of T actions (t = T is the final observation's step), None for
# padding. Episode e's indices are offset by 100·e.
SEQUENCE_CASES = {
    "overlap_period_1": dict(
        sequence_length=3, period=1, episodes=[([1.0, 2.0, 3.0, 4.0], [1.0, 1.0, 1.0, 0.0])],
        expected=[[0, 1, 2], [1, 2, 3], [2, 3, 4]]),
    # Step T = 4 ends the sequence starting at 2: no padding needed.
    "overlap_period_2_covered": dict(
        sequence_length=3, period=2, episodes=[([1.0, 2.0, 3.0, 4.0], [1.0, 1.0, 1.0, 1.0])],
        expected=[[0, 1, 2], [2, 3, 4]]),
    "overlap_period_2_padded": dict(
        sequence_length=3, period=2, episodes=[([1.0, 2.0, 3.0, 4.0, 5.0], [1.0] * 4 + [0.0])],
        expected=[[0, 1, 2], [2, 3, 4], [4, 5, None]]),
    "period_equals_length": dict(
        sequence_length=3, period=3, episodes=[([1.0, 2.0, 3.0, 4.0], [1.0, 1.0, 1.0, 0.0])],
        expected=[[0, 1, 2], [3, 4, None]]),
    # The last sequence holds only x_T: the transition 5 -> 6 is in no sequence (period = length).
    "period_equals_length_final_alone": dict(
        sequence_length=3, period=3, episodes=[([1.0] * 6, [1.0] * 6)],
        expected=[[0, 1, 2], [3, 4, 5], [6, None, None]]),
    "episode_shorter_than_sequence": dict(
        sequence_length=4, period=2, episodes=[([1.0], [0.0])],
        expected=[[0, 1, None, None]]),
    "no_padding": dict(
        sequence_length=3, period=3, pad_end_of_episode=False,
        episodes=[([1.0, 2.0, 3.0, 4.0], [1.0, 1.0, 1.0, 0.0])],
        expected=[[0, 1, 2]]),
    "two_episodes": dict(
        sequence_length=2, period=1,
        episodes=[([1.0], [0.0]), ([2.0, 3.0], [1.0, 1.0])],
        expected=[[0, 1], [100, 101], [101, 102]]),
    # Two padding steps precede step 0, so a learner burning in two steps trains on 0, 1 (first
    # sequence), 2, 3 (second) and 4 (third, end-padded).
    "start_padding": dict(
        sequence_length=4, period=2, start_padding=2,
        episodes=[([1.0, 2.0, 3.0, 4.0], [1.0, 1.0, 1.0, 0.0])],
        expected=[[None, None, 0, 1], [0, 1, 2, 3], [2, 3, 4, None]]),
    "start_padding_two_episodes": dict(
        sequence_length=2, period=1, start_padding=1,
        episodes=[([1.0], [0.0]), ([2.0, 3.0], [1.0, 1.0])],
        expected=[[None, 0], [0, 1], [None, 100], [100, 101], [101, 102]]),
}


def _expected_step(episode: int, t: int | None, rewards, discounts, with_extras: bool) -> Step:
  """Step t of an episode under the convention of `priorax.replay.types.Step`."""
  zero_extras = {"log_prob": np.float32(0.0)} if with_extras else ()
  if t is None:  # Padding.
    return Step(observation={"position": np.zeros(2, np.float32),
                             "velocity": np.zeros(1, np.float32)},
                action=np.zeros(1, np.float32), reward=np.float32(0.0),
                discount=np.float32(0.0), start_of_episode=False, mask=np.float32(0.0),
                extras=zero_extras)
  i = 100 * episode + t
  if t == len(rewards):  # The final observation's step.
    return Step(observation=observation(i), action=np.zeros(1, np.float32),
                reward=np.float32(0.0), discount=np.float32(0.0), start_of_episode=False,
                mask=np.float32(1.0), extras=zero_extras)
  return Step(observation=observation(i), action=action(i), reward=np.float32(rewards[t]),
              discount=np.float32(discounts[t]), start_of_episode=t == 0,
              mask=np.float32(1.0), extras=extras(i) if with_extras else ())


def _stack(steps: list[Step]) -> Step:
  return tree.map_structure(lambda *leaves: np.stack(leaves), *steps)


@pytest.mark.parametrize("with_extras", [False, True], ids=["no_extras", "extras"])
@pytest.mark.parametrize("case", SEQUENCE_CASES.values(), ids=SEQUENCE_CASES.keys())
def test_sequences(make_queue_server, case, with_extras):
  length = case["sequence_length"]
  extras_spec = EXTRAS_SPEC if with_extras else ()
  client = make_queue_server(SequenceAdder.signature(SPEC, length, extras_spec))
  adder = SequenceAdder(client, "queue", sequence_length=length, period=case["period"],
                        pad_end_of_episode=case.get("pad_end_of_episode", True),
                        start_padding=case.get("start_padding", 0))
  for episode, (rewards, discounts) in enumerate(case["episodes"]):
    play_episode(adder, episode, rewards, discounts, with_extras)
  expected = []
  for indices in case["expected"]:
    # A sequence lies within one episode: the episode of its first id that is not padding.
    episode = next(i for i in indices if i is not None) // 100
    rewards, discounts = case["episodes"][episode]
    expected.append(_stack([
        _expected_step(episode, None if i is None else i % 100, rewards, discounts, with_extras)
        for i in indices]))
  _assert_items_equal(read_all(client, "queue"), expected)


@pytest.mark.parametrize("kwargs, message", [
    (dict(n_step=0, discount=0.9), "n_step must be >= 1, got 0"),
    (dict(n_step=1, discount=1.5), r"discount must be in \[0, 1\], got 1.5"),
])
def test_n_step_rejects_bad_arguments(make_queue_server, kwargs, message):
  client = make_queue_server(NStepTransitionAdder.signature(SPEC))
  with pytest.raises(ValueError, match=message):
    NStepTransitionAdder(client, "queue", **kwargs)


@pytest.mark.parametrize("kwargs, message", [
    (dict(sequence_length=0, period=1), "sequence_length must be >= 1, got 0"),
    (dict(sequence_length=3, period=4), r"period must be in \[1, sequence_length=3\], got 4"),
    (dict(sequence_length=3, period=1, start_padding=3),
     r"start_padding must be in \[0, sequence_length=3\), got 3"),
])
def test_sequence_rejects_bad_arguments(make_queue_server, kwargs, message):
  client = make_queue_server(SequenceAdder.signature(SPEC, 3))
  with pytest.raises(ValueError, match=message):
    SequenceAdder(client, "queue", **kwargs)


def test_add_needs_add_first(make_queue_server):
  client = make_queue_server(NStepTransitionAdder.signature(SPEC))
  adder = NStepTransitionAdder(client, "queue", n_step=1, discount=0.9)
  timestep = dm_env.transition(np.float32(1.0), observation(1), np.float32(1.0))
  with pytest.raises(ValueError, match="call add_first first"):
    adder.add(action(0), timestep)
  adder.add_first(dm_env.restart(observation(0)))
  with pytest.raises(ValueError, match="inside an episode"):
    adder.add_first(dm_env.restart(observation(0)))


@pytest.mark.parametrize(
    "later_extras", [(), {"log_prob": np.float32(1.0), "other": np.float32(2.0)}],
    ids=["fewer_arrays", "more_arrays"])
def test_step_structure_must_not_change(make_queue_server, later_extras):
  """The writer appends flat steps: a step that flattens to another number of arrays is refused
  before anything of it is written."""
  client = make_queue_server(NStepTransitionAdder.signature(SPEC, EXTRAS_SPEC))
  adder = NStepTransitionAdder(client, "queue", n_step=1, discount=0.5)
  adder.add_first(dm_env.restart(observation(0)))
  adder.add(action(0), dm_env.transition(np.float32(1.0), observation(1), np.float32(1.0)),
            extras(0))
  with pytest.raises(ValueError, match="every step must have the structure of the first"):
    adder.add(action(1), dm_env.transition(np.float32(2.0), observation(2), np.float32(1.0)),
              later_extras)


def test_flush_puts_every_item_so_far_in_the_table_mid_episode(make_queue_server):
  client = make_queue_server(NStepTransitionAdder.signature(SPEC))
  adder = NStepTransitionAdder(client, "queue", n_step=1, discount=0.5)
  adder.add_first(dm_env.restart(observation(0)))
  for t in range(40):  # More than the items allowed in flight.
    adder.add(action(t), dm_env.transition(np.float32(1.0), observation(t + 1), np.float32(1.0)))
  adder.flush()
  assert client.server_info()["queue"].current_size == 40


def test_flush_gives_up_after_its_timeout_while_the_table_holds_inserts_back():
  # A full queue holds inserts back until items are sampled, as a rate limiter does while a
  # learner lags: flush must return, not wait for a sampler that will never come.
  server = reverb.Server([reverb.Table.queue(
      "queue", 4, signature=NStepTransitionAdder.signature(SPEC))])
  try:
    client = reverb.Client(f"localhost:{server.port}")
    adder = NStepTransitionAdder(client, "queue", n_step=1, discount=0.5)
    adder.add_first(dm_env.restart(observation(0)))
    for t in range(6):  # Two more than the queue holds; fewer than the items allowed in flight.
      adder.add(action(t), dm_env.transition(np.float32(1.0), observation(t + 1),
                                             np.float32(1.0)))
    assert not adder.flush(timeout_s=0.5)
    assert len(read_all(client, "queue")) == 4  # Empties the queue: the two held back go in.
    assert adder.flush(timeout_s=10.0)
    assert client.server_info()["queue"].current_size == 2
  finally:
    server.stop()
