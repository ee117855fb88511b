"""Chooses MuJoCo's OpenGL backend for headless offscreen rendering, and says when there is none.

dm_control fixes its GL backend when it is first imported (`MUJOCO_GL`), and a backend that cannot
create a context makes that import itself fail (EGL: "Cannot initialize a headless EGL display";
OSMesa: an AttributeError from PyOpenGL), so the choice must be made before any dm_control import
and cannot be retried in-process. `configure_gl_backend` therefore probes each backend in a fresh
Python process (one tiny offscreen render, about 0.4 s) and exports the first that works: EGL, then
OSMesa, else dm_control's "off" so that environments still load and only rendering fails, with
`RenderingUnavailableError` naming the Debian packages to install. Child processes inherit the
exported choice and skip the probe. A `MUJOCO_GL` set by the user is always kept.
"""

import functools
import os
import subprocess
import sys

MUJOCO_GL = "MUJOCO_GL"
# In order of preference; glfw needs a display, so it is never picked on headless machines.
BACKENDS = ("egl", "osmesa")
# dm_control's name for "no renderer": environments load, `physics.render` raises.
DISABLED = "off"
_PACKAGES = {"egl": "libegl-mesa0 libgl1-mesa-dri", "osmesa": "libosmesa6"}
# Exactly what `physics.render` does: create a GL context, a MuJoCo render context, read pixels.
_PROBE = (
    "from dm_control.mujoco import engine\n"
    "engine.Physics.from_xml_string('<mujoco/>').render(8, 8)\n"
)
_PROBE_TIMEOUT_S = 120


class RenderingUnavailableError(RuntimeError):
  """No OpenGL backend can create a MuJoCo offscreen rendering context in this process."""


@functools.cache
def probe_backend(backend: str) -> bool:
  """Whether a fresh Python process with `MUJOCO_GL=backend` can render one MuJoCo frame."""
  try:
    result = subprocess.run(
        [sys.executable, "-c", _PROBE],
        env={**os.environ, MUJOCO_GL: backend},
        capture_output=True,
        timeout=_PROBE_TIMEOUT_S,
        check=False,
    )
  except (OSError, subprocess.TimeoutExpired):
    return False
  return result.returncode == 0


def select_gl_backend() -> str:
  """Returns the first of `BACKENDS` that renders here, or `DISABLED` where none does."""
  return next((backend for backend in BACKENDS if probe_backend(backend)), DISABLED)


def configure_gl_backend() -> None:
  """Exports `MUJOCO_GL` for dm_control unless the user set it or dm_control is already loaded."""
  if MUJOCO_GL in os.environ or "dm_control._render" in sys.modules:
    return
  os.environ[MUJOCO_GL] = select_gl_backend()


def check_rendering() -> str:
  """Returns the GL backend this process renders with.

  Raises:
    RenderingUnavailableError: the backend dm_control loaded is none, "off", or cannot create a
      context; the one-line message names the Debian packages that provide EGL and OSMesa.
  """
  try:
    from dm_control import _render  # pylint: disable=g-import-not-at-top
  except (ImportError, AttributeError) as error:  # A forced MUJOCO_GL whose backend cannot load.
    raise RenderingUnavailableError(_unavailable_message(os.environ.get(MUJOCO_GL))) from error
  backend = _render.BACKEND
  if backend is None or backend == DISABLED or not probe_backend(backend):
    raise RenderingUnavailableError(_unavailable_message(backend))
  return backend


def _unavailable_message(backend: str | None) -> str:
  packages = " or ".join(f"{_PACKAGES[name]} (MUJOCO_GL={name})" for name in BACKENDS)
  return (
      f"MuJoCo offscreen rendering is unavailable (MUJOCO_GL={backend} cannot create an OpenGL "
      f"context): install the Debian packages {packages}, then start a new process that imports "
      "priorax.envs (or sets MUJOCO_GL) before dm_control."
  )
