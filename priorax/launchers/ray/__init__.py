"""The Ray launcher (`priorax launch`): one Reverb server, a learner, N actors and an evaluator,
driven by the local launcher's `ExperimentConfig` (see `launcher.py`)."""

from priorax.launchers.ray.launcher import LOCAL_ONLY_ENV
from priorax.launchers.ray.launcher import RayConfig
from priorax.launchers.ray.launcher import SYSTEM_LOG
from priorax.launchers.ray.launcher import connect
from priorax.launchers.ray.launcher import node_name
from priorax.launchers.ray.launcher import run_experiment
