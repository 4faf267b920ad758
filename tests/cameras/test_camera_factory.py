"""open_camera builds the implementation that matches the settings and opens it."""

from __future__ import annotations

import sys

import pytest

from daemon.cameras.camera import CameraState
from daemon.cameras.factory import create_camera, open_camera
from daemon.cameras.settings import SimulatedCameraSettings
from daemon.cameras.simulated import SimulatedCamera
from daemon.errors import ConfigError


def test_simulated_settings_give_an_open_simulated_camera() -> None:
    cam = open_camera(SimulatedCameraSettings())
    assert isinstance(cam, SimulatedCamera)
    assert cam.state is CameraState.OPEN
    cam.close()


def test_create_does_not_open() -> None:
    cam = create_camera(SimulatedCameraSettings())
    assert cam.state is CameraState.NEW
    cam.close()


def test_unknown_settings_are_refused() -> None:
    with pytest.raises(ConfigError, match="Got dict instead"):
        create_camera({"pattern": "random"})  # type: ignore[arg-type]


def test_simulated_runs_do_not_import_harvesters() -> None:
    import subprocess

    code = (
        "import sys; from daemon.cameras.factory import open_camera;"
        "from daemon.cameras.settings import SimulatedCameraSettings;"
        "open_camera(SimulatedCameraSettings()).close();"
        "print('harvesters' in sys.modules, 'genicam' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.split() == ["False", "False"]
