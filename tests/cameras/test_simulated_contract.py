"""Every simulated pattern passes the camera contract."""

from __future__ import annotations

from typing import Any

import numpy as np

from daemon.cameras import pattern
from daemon.cameras.camera import Camera, FrameLayout
from daemon.cameras.settings import SimulatedCameraSettings
from daemon.cameras.simulated import SimulatedCamera
from daemon.ipc.frame import Frame
from tests.cameras.camera_contract import CameraContract


class SimulatedContract(CameraContract):
    settings = SimulatedCameraSettings()

    def make_camera(self) -> Camera:
        return SimulatedCamera(self.settings)

    def expected_layout(self) -> FrameLayout:
        return FrameLayout((self.settings.height, self.settings.width), np.dtype(self.settings.dtype))


class TestRadialSine(SimulatedContract):
    settings = SimulatedCameraSettings(pattern="radial_sine", height=48, width=64, dtype="uint16")

    def expected_pixels(self, frame: Frame) -> np.ndarray[Any, Any]:
        return pattern.radial_sine(frame.frame_id, 48, 64, np.uint16)


class TestRandomUint8(SimulatedContract):
    settings = SimulatedCameraSettings(pattern="random", height=32, width=40, dtype="uint8", seed=11)

    def expected_pixels(self, frame: Frame) -> np.ndarray[Any, Any]:
        rng = np.random.default_rng([11, frame.frame_id])
        return rng.integers(0, 256, size=(32, 40), dtype=np.uint8)


class TestEmpty(SimulatedContract):
    settings = SimulatedCameraSettings(pattern="empty", height=16, width=8, dtype="uint8")

    def expected_pixels(self, frame: Frame) -> np.ndarray[Any, Any]:
        return np.zeros((16, 8), dtype=np.uint8)


class TestSoftwareTriggered(SimulatedContract):
    settings = SimulatedCameraSettings(pattern="radial_sine", height=20, width=30, dtype="uint8", trigger="software")
    software_triggered = True

    def expected_pixels(self, frame: Frame) -> np.ndarray[Any, Any]:
        return pattern.radial_sine(frame.frame_id, 20, 30, np.uint8)
