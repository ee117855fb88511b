"""GL backend choice: EGL first, then OSMesa, else "off"; a user's MUJOCO_GL is kept."""

import os

import pytest

from priorax.envs import rendering


@pytest.mark.parametrize(
    "working, expected",
    [
        ({"egl", "osmesa"}, "egl"),
        ({"egl"}, "egl"),
        ({"osmesa"}, "osmesa"),
        (set(), "off"),
    ],
)
def test_prefers_egl_then_osmesa(monkeypatch, working, expected):
  monkeypatch.setattr(rendering, "probe_backend", lambda backend: backend in working)
  assert rendering.select_gl_backend() == expected


def test_configure_keeps_users_choice(monkeypatch):
  monkeypatch.setenv("MUJOCO_GL", "osmesa")
  monkeypatch.setattr(rendering, "probe_backend", pytest.fail)
  rendering.configure_gl_backend()
  assert os.environ["MUJOCO_GL"] == "osmesa"


def test_configure_leaves_a_loaded_dm_control_alone(monkeypatch):
  import dm_control.suite  # pylint: disable=g-import-not-at-top,unused-import
  monkeypatch.delenv("MUJOCO_GL", raising=False)
  monkeypatch.setattr(rendering, "probe_backend", pytest.fail)
  rendering.configure_gl_backend()
  assert "MUJOCO_GL" not in os.environ


def test_probe_fails_for_a_backend_that_cannot_render():
  assert not rendering.probe_backend("no_such_backend")
