"""Episode datasets: written by an actor's adder, read back step for step, fed to another adder."""

import dm_env
import numpy as np
import pytest

from priorax.replay import episodes


class _Recorder:
  """An adder that keeps what it is given."""

  def __init__(self):
    self.calls = []

  def add_first(self, timestep):
    self.calls.append(("first", None, timestep))

  def add(self, action, next_timestep, extras=()):
    del extras
    self.calls.append(("add", np.asarray(action), next_timestep))

  def reset(self):
    self.calls.append(("reset", None, None))


def _episode(length, terminal):
  observations = [{"a": np.full(2, t, np.float32), "b/c": np.full((1, 3), -t, np.float32)}
                  for t in range(length + 1)]
  steps = [(None, dm_env.restart(observations[0]))]
  for t in range(length):
    action = np.full(1, 0.1 * t, np.float32)
    reward = np.float32(t)
    if t == length - 1:
      timestep = (dm_env.termination(reward, observations[t + 1]) if terminal
                  else dm_env.truncation(reward, observations[t + 1]))
    else:
      timestep = dm_env.transition(reward, observations[t + 1])
    steps.append((action, timestep))
  return steps


def _write(writer, steps):
  for action, timestep in steps:
    if action is None:
      writer.add_first(timestep)
    else:
      writer.add(action, timestep)


@pytest.mark.parametrize("terminal", [True, False])
def test_round_trip_is_exact(tmp_path, terminal):
  writer = episodes.EpisodeWriter(str(tmp_path))
  original = _episode(4, terminal)
  _write(writer, original)
  (path,) = episodes.episode_paths(str(tmp_path))
  read = list(episodes.read_episode(path))
  assert len(read) == len(original)
  for (a0, t0), (a1, t1) in zip(original, read):
    assert (a0 is None) == (a1 is None)
    if a0 is not None:
      np.testing.assert_array_equal(a0, a1)
      assert float(t0.reward) == float(t1.reward)
      assert float(t0.discount) == float(t1.discount)
    assert t0.step_type == t1.step_type
    for key in t0.observation:
      np.testing.assert_array_equal(t0.observation[key], t1.observation[key])


def test_replay_into_feeds_every_episode_and_resets_after_a_cut_off_one(tmp_path):
  writer = episodes.EpisodeWriter(str(tmp_path))
  _write(writer, _episode(3, terminal=True))
  cut = _episode(5, terminal=False)[:3]  # Two steps, then the actor stopped.
  _write(writer, cut)
  writer.reset()  # Writes the cut-off episode.
  recorder = _Recorder()
  assert episodes.replay_into(str(tmp_path), recorder) == 3 + 2
  kinds = [c[0] for c in recorder.calls]
  assert kinds == ["first", "add", "add", "add", "first", "add", "add", "reset"]
  assert recorder.calls[3][2].last() and not recorder.calls[6][2].last()


def test_bad_directory_or_keys_are_refused(tmp_path):
  with pytest.raises(episodes.DatasetError, match="holds no episode"):
    episodes.replay_into(str(tmp_path / "missing"), _Recorder())
  _write(episodes.EpisodeWriter(str(tmp_path)), _episode(2, terminal=True))
  with pytest.raises(episodes.DatasetError, match="has observation keys"):
    episodes.replay_into(str(tmp_path), _Recorder(), observation_keys=["a"])
