"""Build a camera from its settings: the one place that maps a settings type to an implementation.

The GenICam module is imported only when a GenICam camera is asked for, so simulated runs never load harvesters.
"""

from __future__ import annotations

from daemon.cameras.camera import Camera
from daemon.cameras.settings import CameraSettings, GenicamCameraSettings, SimulatedCameraSettings
from daemon.cameras.simulated import SimulatedCamera
from daemon.errors import ConfigError


def create_camera(settings: CameraSettings) -> Camera:
    """A new camera for ``settings``, not yet opened."""
    if isinstance(settings, SimulatedCameraSettings):
        return SimulatedCamera(settings)
    if isinstance(settings, GenicamCameraSettings):
        from daemon.cameras.genicam import GenicamCamera  # lazy: keeps harvesters off simulated runs

        return GenicamCamera(settings)
    raise ConfigError(
        "camera settings must be SimulatedCameraSettings or GenicamCameraSettings. "
        f"Got {type(settings).__name__} instead."
    )


def open_camera(settings: CameraSettings) -> Camera:
    """A camera for ``settings``, opened (state OPEN; call ``configure()`` next). Closed again if opening fails."""
    camera = create_camera(settings)
    try:
        camera.open()
    except BaseException:
        camera.close()
        raise
    return camera
