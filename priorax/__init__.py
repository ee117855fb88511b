"""priorax: JAX reinforcement learning with behaviour priors.

Acme-shaped actors and learners that share a Reverb replay. See DESIGN.md for the map.
"""

import os

__version__ = "0.1.0"

# XLA's newer CPU "thunk" runtime (the default in jaxlib 0.4.34) runs the small matmuls of an RL
# update about 20% slower than the classic one on a 2-core CPU (measured on the 256×256 SAC update:
# 104 → 127 updates/s). The flag only affects the CPU backend and must be set before JAX starts,
# so it is added here unless the user chose a value.
if "xla_cpu_use_thunk_runtime" not in os.environ.get("XLA_FLAGS", ""):
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
