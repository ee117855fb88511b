"""priorax: JAX reinforcement learning with behaviour priors.

Acme-shaped actors and learners that share a Reverb replay. See DESIGN.md for the map.
"""

from importlib import metadata
import os

__version__ = "0.1.0"


def _jaxlib_has_classic_cpu_runtime() -> bool:
  """jaxlib 0.4.x can still run XLA's classic CPU runtime; later versions removed it."""
  try:
    major, minor = (int(part) for part in metadata.version("jaxlib").split(".")[:2])
  except (metadata.PackageNotFoundError, ValueError):
    return False
  return (major, minor) < (0, 5)


# XLA's newer CPU "thunk" runtime (the default in jaxlib 0.4.34) runs the small matmuls of an RL
# update about 20% slower than the classic one on a 2-core CPU (measured on the 256×256 SAC update:
# 104 → 127 updates/s). The flag only affects the CPU backend and must be set before JAX starts,
# so it is added here unless the user chose a value (or the jaxlib, e.g. an accelerator machine's
# newer one, no longer has the classic runtime).
if ("xla_cpu_use_thunk_runtime" not in os.environ.get("XLA_FLAGS", "")
    and _jaxlib_has_classic_cpu_runtime()):
  os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") +
                             " --xla_cpu_use_thunk_runtime=false").strip()

# By default XLA's CPU client runs each computation on a worker thread and the caller waits for it
# ("async dispatch"). For an actor's policy, one small network per environment step, that hand-off
# costs more than the network, and the hop between threads (and cores) also slows the next
# `env.step`: on the 2-core machine, dmc:cartpole-swingup's acting loop without an adder spent
# ≈ 220 µs per step beyond `env.step` with it and ≈ 65 µs without. Without it computations run
# inline on the calling thread; a learner's update, already on its own thread, only stops
# overlapping its few µs of Python bookkeeping with XLA (its rate did not drop: 47 updates/s with
# it, 69 without, batches in memory, on the same busy machine). The flag is read when JAX starts
# its CPU backend, so this has no effect in a process that ran a JAX computation before importing
# priorax.
import jax  # pylint: disable=wrong-import-position

jax.config.update("jax_cpu_enable_async_dispatch", False)
