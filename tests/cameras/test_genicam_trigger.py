"""Software trigger on the fake device: no frame without a trigger, one frame per trigger."""

from __future__ import annotations

import threading
import time
from contextlib import AbstractContextManager
from pathlib import Path

import pytest

from daemon.cameras.genicam import GenicamCamera
from daemon.errors import CameraError
from tests.cameras.genicam_support import acquiring, fake_settings

pytestmark = pytest.mark.genicam


def triggered(cti: Path, **kwargs: object) -> AbstractContextManager[GenicamCamera]:
    return acquiring(
        fake_settings(
            cti, trigger_selector="FrameStart", trigger_mode="On", trigger_source="Software", timeout_s=0.2, **kwargs
        )
    )


def test_one_frame_per_trigger(fake_cti: Path) -> None:
    with triggered(fake_cti) as cam:
        assert cam.read(0.3) is None  # longer than timeout_s: waiting for a trigger is not a stall
        cam.trigger()
        frame = cam.read(2.0)
        assert frame is not None
        assert frame.frame_id == 0
        assert cam.read(0.1) is None
        cam.trigger()
        cam.trigger()
        ids = [cam.read(2.0).frame_id for _ in range(2)]  # type: ignore[union-attr]
        assert ids == [1, 2]
        assert cam.read(0.1) is None
        assert cam.stats.frames_delivered == 3


def test_trigger_from_another_thread(fake_cti: Path) -> None:
    with triggered(fake_cti) as cam:
        timer = threading.Timer(0.1, cam.trigger)
        timer.start()
        began = time.monotonic()
        frame = cam.read(3.0)
        timer.join()
    assert frame is not None
    assert time.monotonic() - began >= 0.05


def test_trigger_on_a_free_running_camera_raises(fake_cti: Path) -> None:
    with (
        acquiring(fake_settings(fake_cti, trigger_mode="Off")) as cam,
        pytest.raises(CameraError, match="trigger_mode On and trigger_source Software"),
    ):
        cam.trigger()


def test_yaml_boolean_trigger_mode(fake_cti: Path) -> None:
    with triggered(fake_cti) as cam:
        assert cam.read_feature("TriggerMode") == "On"
    with acquiring(fake_settings(fake_cti, trigger_mode=False)) as cam:
        assert cam.read_feature("TriggerMode") == "Off"
        assert cam.read(2.0) is not None
