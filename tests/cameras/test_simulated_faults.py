"""Simulated faults: stall, disconnect, incomplete frames, dropped frame ids."""

from __future__ import annotations

import time

import pytest

from daemon.cameras.settings import SimulatedCameraSettings, SimulatedFaults
from daemon.cameras.simulated import SimulatedCamera
from daemon.errors import CameraLost, CameraTimeout
from daemon.ipc.frame import FrameFlags


def started(faults: SimulatedFaults, **kwargs: object) -> SimulatedCamera:
    settings = SimulatedCameraSettings(height=16, width=16, faults=faults, **kwargs)
    cam = SimulatedCamera(settings)
    cam.open()
    cam.configure()
    cam.start()
    return cam


def test_stall_shorter_than_the_watchdog_delays_one_frame() -> None:
    cam = started(SimulatedFaults(stall_at_frame=2, stall_s=0.3), timeout_s=5.0)
    assert [cam.read(1.0).frame_id for _ in range(2)] == [0, 1]
    began = time.monotonic()
    assert cam.read(0.1) is None
    frame = cam.read(1.0)
    assert frame is not None
    assert frame.frame_id == 2
    assert time.monotonic() - began >= 0.25
    next_frame = cam.read(0.1)
    assert next_frame is not None
    assert next_frame.frame_id == 3
    cam.close()


def test_stall_longer_than_the_watchdog_raises_camera_timeout_then_resumes() -> None:
    # the stall (0.9 s) outlasts one watchdog period (0.5 s) but not two: one CameraTimeout, then the frame
    cam = started(SimulatedFaults(stall_at_frame=1, stall_s=0.9), timeout_s=0.5)
    assert cam.read(1.0) is not None
    began = time.monotonic()
    with pytest.raises(CameraTimeout, match=r"timeout_s=0.5"):
        cam.read(2.0)
    assert 0.45 < time.monotonic() - began < 0.85
    frame = cam.read(2.0)  # the watchdog re-armed; the stalled frame arrives before it fires again
    assert frame is not None
    assert frame.frame_id == 1
    cam.close()


def test_disconnect_raises_camera_lost_and_keeps_raising() -> None:
    cam = started(SimulatedFaults(disconnect_at_frame=3))
    assert [cam.read(1.0).frame_id for _ in range(3)] == [0, 1, 2]
    with pytest.raises(CameraLost, match="frame 3"):
        cam.read(1.0)
    with pytest.raises(CameraLost):
        cam.read(1.0)
    cam.stop()
    cam.close()


def test_restart_after_disconnect_delivers_again_until_the_fault() -> None:
    cam = started(SimulatedFaults(disconnect_at_frame=1))
    assert cam.read(1.0) is not None
    with pytest.raises(CameraLost):
        cam.read(1.0)
    cam.stop()
    cam.start()
    assert cam.read(1.0) is not None
    cam.close()


def test_incomplete_frames_are_flagged_counted_and_partly_zero() -> None:
    cam = started(SimulatedFaults(incomplete_every=3))
    got = [cam.read(1.0) for _ in range(7)]
    cam.close()
    flags = [f.flags for f in got]
    incomplete = [f.frame_id for f in got if f is not None and f.incomplete]
    assert incomplete == [3, 6]
    assert flags[3] == FrameFlags.INCOMPLETE
    assert not got[3].pixels[8:].any()
    assert got[3].pixels[:8].any()
    assert cam.stats.incomplete_frames == 2


def test_dropped_ids_flag_the_next_frame_and_count_the_gap() -> None:
    cam = started(SimulatedFaults(drop_every=4))
    got = [cam.read(1.0) for _ in range(7)]
    cam.close()
    ids = [f.frame_id for f in got]
    assert ids == [0, 1, 2, 4, 5, 6, 8]
    after_gap = [f.frame_id for f in got if f is not None and f.flags & FrameFlags.AFTER_GAP]
    assert after_gap == [4, 8]
    stats = cam.stats
    assert (stats.gaps, stats.frames_lost, stats.frames_delivered) == (2, 2, 7)
