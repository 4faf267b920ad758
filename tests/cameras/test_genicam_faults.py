"""Producer faults end in flagged frames, None, CameraTimeout or CameraLost, never a hang; reconnect continues."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from pytest_mock import MockerFixture

from daemon.cameras import pattern
from daemon.cameras.camera import CameraState
from daemon.errors import CameraError, CameraLost, CameraTimeout
from daemon.ipc.frame import FrameFlags
from tests.cameras.genicam_support import acquiring, fake_settings

pytestmark = pytest.mark.genicam


def test_incomplete_buffers_are_delivered_flagged_and_counted(fake_cti: Path) -> None:
    # Two buffers, so frame 2 lands in frame 0's buffer: the camera re-queues buffers without clearing them, so
    # its lower half still holds frame 0's rows and only the copy's zeroing keeps them out.
    settings = fake_settings(fake_cti, width=50, height=40, num_buffers=2, nodes={"FaultIncompleteEvery": 3})
    with acquiring(settings) as cam:
        frames = [cam.read(2.0) for _ in range(6)]
        stats = cam.stats
    incomplete = [f.frame_id for f in frames if f is not None and f.incomplete]
    assert incomplete == [2, 5]  # the producer cuts frames with (id + 1) % 3 == 0
    assert stats.incomplete_frames == 2
    partial = frames[2]
    assert partial is not None
    assert partial.flags == FrameFlags.INCOMPLETE
    expected = pattern.radial_sine(2, 40, 50, np.uint16)
    np.testing.assert_array_equal(partial.pixels[:20], expected[:20])
    assert not partial.pixels[20:].any()  # never stale bytes from an earlier frame


def test_stall_shorter_than_the_watchdog_reads_none_then_continues(fake_cti: Path) -> None:
    settings = fake_settings(fake_cti, timeout_s=3.0, nodes={"FaultStallAfter": 2, "FaultStallMs": 400})
    with acquiring(settings) as cam:
        assert [cam.read(2.0).frame_id for _ in range(2)] == [0, 1]  # type: ignore[union-attr]
        began = time.monotonic()
        assert cam.read(0.1) is None
        assert time.monotonic() - began < 0.5
        frame = cam.read(2.0)
        assert frame is not None
        assert frame.frame_id == 2
        assert frame.flags == FrameFlags.NONE


def test_stall_longer_than_the_watchdog_raises_camera_timeout(fake_cti: Path) -> None:
    # the stall (0.9 s) outlasts one watchdog period (0.5 s) but not two: one CameraTimeout, then the frame
    settings = fake_settings(fake_cti, timeout_s=0.5, nodes={"FaultStallAfter": 1, "FaultStallMs": 900})
    with acquiring(settings) as cam:
        assert cam.read(2.0) is not None
        began = time.monotonic()
        with pytest.raises(CameraTimeout, match=r"camera FAKE0001: no frame for 0\.\d+ s \(timeout_s=0.5\)"):
            cam.read(5.0)
        assert time.monotonic() - began < 0.85
        frame = cam.read(3.0)  # the watchdog re-armed; the camera was alive all along and frames resume
        assert frame is not None
        assert frame.frame_id == 1
        assert cam.stats.frames_lost == 0


def test_disconnect_with_on_lost_fail_raises_camera_lost(fake_cti: Path) -> None:
    settings = fake_settings(fake_cti, timeout_s=0.3, nodes={"FaultDisconnectAfter": 3})
    with acquiring(settings) as cam:
        ids = [cam.read(2.0).frame_id for _ in range(3)]  # type: ignore[union-attr]
        began = time.monotonic()
        with pytest.raises(CameraLost, match=r"camera FAKE0001: the device was lost") as info:
            cam.read(5.0)
        assert time.monotonic() - began < 1.5
        assert info.value.__cause__ is not None
        with pytest.raises(CameraLost):
            cam.read(0.1)
        cam.stop()
        assert cam.state is CameraState.CONFIGURED
    assert ids == [0, 1, 2]
    assert cam.state is CameraState.CLOSED


def test_disconnect_with_reconnect_continues_and_counts_the_gap(fake_cti: Path) -> None:
    settings = fake_settings(
        fake_cti,
        width=40,
        height=30,
        frame_rate_hz=200.0,
        timeout_s=0.3,
        on_lost="reconnect",
        reconnect_backoff_s=0.05,
        nodes={"FaultDisconnectAfter": 4},
    )
    with acquiring(settings) as cam:
        frames = [cam.read(5.0) for _ in range(6)]
        stats = cam.stats
    assert all(f is not None for f in frames)
    ids = [f.frame_id for f in frames if f is not None]
    assert ids[:4] == [0, 1, 2, 3]
    assert ids == sorted(set(ids))
    assert ids[4] > 4  # the outage shows as a gap
    resumed = frames[4]
    assert resumed is not None
    assert resumed.flags & FrameFlags.AFTER_GAP
    # the device itself restarted at frame 0: the pixels are its frame 0, the id continues ours
    np.testing.assert_array_equal(resumed.pixels, pattern.radial_sine(0, 30, 40, np.uint16))
    assert stats.reconnects == 1
    assert stats.gaps == 1
    assert stats.frames_lost == ids[4] - 4
    assert stats.frames_delivered == 6


def test_reconnect_gives_up_after_its_attempts(fake_cti: Path, mocker: MockerFixture) -> None:
    settings = fake_settings(
        fake_cti,
        timeout_s=0.2,
        on_lost="reconnect",
        reconnect_attempts=2,
        reconnect_backoff_s=0.01,
        nodes={"FaultDisconnectAfter": 1},
    )
    with acquiring(settings) as cam:
        assert cam.read(2.0) is not None
        # the fake device always comes back; a device that never does is injected
        connect = mocker.patch.object(cam, "_connect", side_effect=CameraError("no device matches"))
        began = time.monotonic()
        with pytest.raises(CameraLost, match=r"2 reconnect attempt\(s\) failed"):
            cam.read(5.0)
        assert time.monotonic() - began < 2.0
        assert connect.call_count == 2
