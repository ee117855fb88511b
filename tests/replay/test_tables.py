"""Table factory (limiter, validation) and a server whose replay survives a restart."""

import sys

import pytest
import reverb

from priorax.replay import NStepTransitionAdder
from priorax.replay import checkpoint
from priorax.replay import make_server
from priorax.replay import make_uniform_table
from priorax.replay import packing
from tests.replay.replay_test_utils import SPEC
from tests.replay.replay_test_utils import play_episode

# Each case: table arguments -> (min_diff, max_diff) of Reverb's limiter, i.e. N·ρ ∓ b.
LIMITER_CASES = {
    # Reverb's MinSize is a ratio limiter with an unbounded error range.
    "min_size": (dict(min_size_to_sample=10), (-sys.float_info.max, sys.float_info.max)),
    "ratio_default_buffer": (dict(min_size_to_sample=10, samples_per_insert=4.0),
                             (40.0 - 1024.0, 40.0 + 1024.0)),
    "ratio_large_rho_default_buffer": (dict(min_size_to_sample=10, samples_per_insert=1000.0),
                                       (10000.0 - 2000.0, 10000.0 + 2000.0)),
    "ratio_given_buffer": (dict(min_size_to_sample=10, samples_per_insert=4.0, error_buffer=8.0),
                           (32.0, 48.0)),
}


@pytest.mark.parametrize("kwargs, diff_range", LIMITER_CASES.values(), ids=LIMITER_CASES.keys())
def test_uniform_table_limiter(kwargs, diff_range):
  info = make_uniform_table("replay", max_size=100, **kwargs).info
  assert info.sampler_options.uniform and info.remover_options.fifo
  limiter = info.rate_limiter_info
  assert (limiter.min_diff, limiter.max_diff) == pytest.approx(diff_range)


@pytest.mark.parametrize("kwargs, message", [
    (dict(max_size=0, min_size_to_sample=1), "max_size must be >= 1, got 0"),
    (dict(max_size=10, min_size_to_sample=11),
     r"min_size_to_sample must be in \[1, max_size=10\], got 11"),
    (dict(max_size=10, min_size_to_sample=1, samples_per_insert=0.0),
     "samples_per_insert must be > 0, got 0.0"),
    (dict(max_size=10, min_size_to_sample=1, error_buffer=5.0),
     "error_buffer=5.0 needs samples_per_insert"),
    (dict(max_size=10, min_size_to_sample=1, samples_per_insert=8.0, error_buffer=4.0),
     r"error_buffer must be >= max\(1, samples_per_insert=8.0\), got 4.0"),
])
def test_uniform_table_rejects_bad_arguments(kwargs, message):
  with pytest.raises(ValueError, match=message):
    make_uniform_table("replay", **kwargs)


def _make_server(checkpoint_dir: str) -> reverb.Server:
  table = make_uniform_table("replay", max_size=100, min_size_to_sample=1,
                             signature=NStepTransitionAdder.signature(SPEC))
  return make_server([table], checkpoint_dir=checkpoint_dir)


def test_replay_survives_server_restart(tmp_path):
  server = _make_server(str(tmp_path))
  client = reverb.Client(f"localhost:{server.port}")
  adder = NStepTransitionAdder(client, "replay", n_step=2, discount=0.99)
  play_episode(adder, 0, [1.0] * 7, [1.0] * 7)
  assert client.server_info()["replay"].current_size == 7
  path = checkpoint(client)
  assert path.startswith(str(tmp_path))
  del adder
  server.stop()

  restarted = _make_server(str(tmp_path))
  client = reverb.Client(f"localhost:{restarted.port}")
  assert client.server_info()["replay"].current_size == 7
  sample = next(client.sample("replay", emit_timesteps=False, unpack_as_table_signature=True))
  item = packing.unpack(client.server_info()["replay"].signature, sample.data)
  assert item.observation["position"].shape == (2,)
  restarted.stop()
