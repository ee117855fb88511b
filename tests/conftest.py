"""Suite-wide set-up: pick MuJoCo's GL backend before any test imports dm_control."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import priorax.envs  # pylint: disable=unused-import,wrong-import-position
