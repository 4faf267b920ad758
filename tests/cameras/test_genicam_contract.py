"""The GenICam camera on the fake producer passes the camera contract (Mono16 free run, Mono8 software-triggered)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from daemon.cameras import pattern
from daemon.cameras.camera import Camera, FrameLayout
from daemon.cameras.genicam import GenicamCamera
from daemon.ipc.frame import Frame
from tests.cameras.camera_contract import CameraContract
from tests.cameras.genicam_support import fake_settings

pytestmark = pytest.mark.genicam


class TestGenicamMono16(CameraContract):
    @pytest.fixture(autouse=True)
    def _cti(self, fake_cti: Path) -> None:
        self.cti = fake_cti

    def make_camera(self) -> Camera:
        return GenicamCamera(fake_settings(self.cti, width=40, height=30, pixel_format="Mono16"))

    def expected_layout(self) -> FrameLayout:
        return FrameLayout((30, 40), np.dtype(np.uint16))

    def expected_pixels(self, frame: Frame) -> np.ndarray[Any, Any]:
        return pattern.radial_sine(frame.frame_id, 30, 40, np.uint16)


class TestGenicamSoftwareTriggeredMono8(CameraContract):
    software_triggered = True

    @pytest.fixture(autouse=True)
    def _cti(self, fake_cti: Path) -> None:
        self.cti = fake_cti

    def make_camera(self) -> Camera:
        settings = fake_settings(
            self.cti,
            serial="FAKE0002",
            width=33,
            height=17,
            pixel_format="Mono8",
            trigger_selector="FrameStart",
            trigger_mode="On",
            trigger_source="Software",
        )
        return GenicamCamera(settings)

    def expected_layout(self) -> FrameLayout:
        return FrameLayout((17, 33), np.dtype(np.uint8))

    def expected_pixels(self, frame: Frame) -> np.ndarray[Any, Any]:
        return pattern.radial_sine(frame.frame_id, 17, 33, np.uint8)
