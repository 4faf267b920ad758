"""Simulated pacing: free run at the frame period, software triggers, the no-frame watchdog."""

from __future__ import annotations

import threading
import time

import pytest

from daemon.cameras.settings import SimulatedCameraSettings
from daemon.cameras.simulated import SimulatedCamera
from daemon.errors import CameraError


def started(**kwargs: object) -> SimulatedCamera:
    cam = SimulatedCamera(SimulatedCameraSettings(height=8, width=8, **kwargs))
    cam.open()
    cam.configure()
    cam.start()
    return cam


def test_free_run_delivers_at_the_frame_period() -> None:
    cam = started(frame_period_s=0.02)
    began = time.monotonic()
    for _ in range(11):
        assert cam.read(1.0) is not None
    elapsed = time.monotonic() - began
    cam.close()
    assert 0.19 <= elapsed < 0.6  # 10 periods after the first frame


def test_read_returns_none_when_the_next_frame_is_not_due() -> None:
    cam = started(frame_period_s=0.5)
    assert cam.read(1.0) is not None
    began = time.monotonic()
    assert cam.read(0.05) is None
    assert time.monotonic() - began < 0.3
    cam.close()


def test_software_trigger_releases_one_frame_each() -> None:
    cam = started(trigger="software")
    assert cam.read(0.05) is None
    cam.trigger()
    cam.trigger()
    assert cam.read(0.5) is not None
    assert cam.read(0.5) is not None
    assert cam.read(0.05) is None
    assert cam.stats.frames_delivered == 2
    cam.close()


def test_trigger_from_another_thread_wakes_a_waiting_read() -> None:
    cam = started(trigger="software")
    timer = threading.Timer(0.1, cam.trigger)
    timer.start()
    began = time.monotonic()
    frame = cam.read(5.0)
    timer.join()
    cam.close()
    assert frame is not None
    assert 0.05 < time.monotonic() - began < 2.0


def test_trigger_on_a_free_running_camera_raises() -> None:
    cam = started()
    with pytest.raises(CameraError, match="trigger='software'"):
        cam.trigger()
    cam.close()


def test_trigger_when_not_acquiring_raises() -> None:
    cam = SimulatedCamera(SimulatedCameraSettings(trigger="software"))
    cam.open()
    with pytest.raises(CameraError, match="cannot trigger while open"):
        cam.trigger()
    cam.close()


def test_waiting_for_a_trigger_never_times_out() -> None:
    cam = started(trigger="software", timeout_s=0.05)
    assert cam.read(0.15) is None
    cam.close()


def test_negative_read_timeout_is_refused() -> None:
    cam = started()
    with pytest.raises(ValueError, match="timeout_s must be >= 0"):
        cam.read(-1)
    cam.close()
