"""Environments: the name registry (`dmc:<domain>-<task>`, `meta:<task>`, ...), agent-facing wrappers, rendering.

MuJoCo's GL backend is fixed when dm_control is first imported, so it is chosen here, before any
dm_control import (EGL, else OSMesa; see `rendering`).
"""

from priorax.envs import rendering

rendering.configure_gl_backend()

# pylint: disable=g-import-not-at-top,g-bad-import-order,wrong-import-position
from priorax.envs import control_suite
from priorax.envs import families
from priorax.envs import locomotion
from priorax.envs import manipulation
from priorax.envs import meta
from priorax.envs import registry
from priorax.envs import skills
from priorax.envs.registry import list_environments
from priorax.envs.registry import make_environment
from priorax.envs.registry import register
from priorax.envs.registry import unknown_environment_error
from priorax.envs.registry import UnknownEnvironmentError
from priorax.envs.rendering import RenderingUnavailableError
from priorax.envs.wrappers import ActionRepeatWrapper
from priorax.envs.wrappers import AtLeast1DObservationWrapper
from priorax.envs.wrappers import CanonicalActionWrapper
from priorax.envs.wrappers import EnvironmentWrapper
from priorax.envs.wrappers import ObservationKeysWrapper
from priorax.envs.wrappers import SinglePrecisionWrapper
# pylint: enable=g-import-not-at-top,g-bad-import-order,wrong-import-position

registry.register(control_suite.PREFIX, control_suite.load, control_suite.list_names)
registry.register(meta.PREFIX, meta.load, meta.list_names)
registry.register(families.PREFIX, families.load, families.list_names)
registry.register(manipulation.PREFIX, manipulation.load, manipulation.list_names)
registry.register(skills.PREFIX, skills.load, skills.list_names)
registry.register(locomotion.PREFIX, locomotion.load, locomotion.list_names)
