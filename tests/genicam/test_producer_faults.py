"""Injected faults and how harvesters shows them: disconnect, incomplete buffers, stall, dropped frames."""

from __future__ import annotations

import time

import numpy as np
import pytest
from genicam.gentl import IoException, TimeoutException
from harvesters.core import Callback, Harvester, ImageAcquirer

from daemon.cameras.pattern import radial_sine
from tests.fixtures.producer import grab

pytestmark = pytest.mark.genicam


class CountingCallback(Callback):
    def __init__(self) -> None:
        self.count = 0

    def emit(self, context: object | None = None) -> None:
        self.count += 1


def small_camera(fake_harvester: Harvester, serial: str = "FAKE0001") -> ImageAcquirer:
    acquirer = fake_harvester.create({"serial_number": serial})
    acquirer.remote_device.node_map.Width.value = 64
    acquirer.remote_device.node_map.Height.value = 64
    acquirer.num_buffers = 8
    return acquirer


def assert_lost(acquirer: ImageAcquirer, delivered: int) -> None:
    """The first `delivered` frames arrive, then nothing; registers fail; stop() raises once; destroy works."""
    assert [grab(acquirer).frame_id for _ in range(delivered)] == list(range(delivered))
    with pytest.raises(TimeoutException):
        acquirer.fetch(timeout=0.2)
    nm = acquirer.remote_device.node_map
    with pytest.raises(IoException, match="disconnected"):
        _ = nm.FakeFrameCount.value  # not cached by GenApi: a cached feature (Width) would still read
    with pytest.raises(IoException):
        nm.Gain.value = 1.0
    with pytest.raises(IoException):
        acquirer.stop()  # AcquisitionStop.execute() fails after harvesters marked itself stopped
    assert not acquirer.is_acquiring()
    acquirer.destroy()


def test_disconnect_from_the_environment_then_the_device_comes_back(
    fake_harvester: Harvester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_GENTL_DISCONNECT_AFTER", "3")
    acquirer = small_camera(fake_harvester)
    assert acquirer.remote_device.node_map.FaultDisconnectAfter.value == 3
    acquirer.start()
    assert_lost(acquirer, 3)
    monkeypatch.delenv("FAKE_GENTL_DISCONNECT_AFTER")
    back = small_camera(fake_harvester)  # reopened without Harvester.update()
    back.start()
    assert [grab(back).frame_id for _ in range(5)] == list(range(5))


def test_disconnect_from_the_feature_and_rediscovery(fake_harvester: Harvester) -> None:
    acquirer = small_camera(fake_harvester, "FAKE0002")
    acquirer.remote_device.node_map.FaultDisconnectAfter.value = 2
    acquirer.start()
    assert_lost(acquirer, 2)
    fake_harvester.update()
    back = small_camera(fake_harvester, "FAKE0002")
    assert back.remote_device.node_map.FaultDisconnectAfter.value == 0
    back.start()
    assert grab(back).frame_id == 0


def test_destroy_of_a_lost_acquiring_device_raises_once(fake_harvester: Harvester) -> None:
    acquirer = small_camera(fake_harvester)
    acquirer.remote_device.node_map.FaultDisconnectAfter.value = 1
    acquirer.start()
    grab(acquirer)
    with pytest.raises(IoException):
        acquirer.destroy()
    acquirer.destroy()  # stop() is now a no-op, so the release completes
    assert small_camera(fake_harvester) is not None


def test_incomplete_buffers_are_flagged_and_skipped_by_harvesters(
    fake_harvester: Harvester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_GENTL_INCOMPLETE_EVERY", "3")
    acquirer = small_camera(fake_harvester)
    incomplete = CountingCallback()
    acquirer.add_callback(acquirer.Events.INCOMPLETE_BUFFER, incomplete)
    acquirer.start()
    frames = [grab(acquirer) for _ in range(6)]
    assert [f.frame_id for f in frames] == [0, 1, 3, 4, 6, 7]
    assert incomplete.count == 2  # frames 2 and 5
    for frame in frames:
        np.testing.assert_array_equal(frame.image, radial_sine(frame.frame_id, 64, 64, np.uint8))


def test_incomplete_buffer_is_half_filled(fake_harvester: Harvester) -> None:
    acquirer = small_camera(fake_harvester)
    acquirer.remote_device.node_map.FaultIncompleteEvery.value = 1  # every frame
    acquirer.start()
    monitor = next(iter(acquirer._new_buffer_event_monitor_dict.values()))  # the raw GenTL event, no discard
    deadline = time.monotonic() + 2.0
    while time.monotonic() < deadline:
        try:
            monitor.update_event_data(10)
        except TimeoutException:
            continue
        break
    buffer = monitor.buffer
    assert not buffer.is_complete()
    assert (buffer.size_filled, buffer.delivered_image_height) == (32 * 64, 32)
    image = np.frombuffer(buffer.raw_buffer, dtype=np.uint8, count=64 * 64).reshape(64, 64)
    expected = radial_sine(buffer.frame_id, 64, 64, np.uint8)
    np.testing.assert_array_equal(image[:32], expected[:32])
    assert not image[32:].any()  # the producer leaves the rest as it was: a fresh buffer, zeros
    buffer.parent.queue_buffer(buffer)


@pytest.mark.slow
def test_stall_times_out_a_fetch_then_frames_resume_without_a_gap(
    fake_harvester: Harvester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_GENTL_STALL_AFTER", "2")
    monkeypatch.setenv("FAKE_GENTL_STALL_MS", "1200")
    acquirer = small_camera(fake_harvester)
    acquirer.start()
    assert [grab(acquirer).frame_id for _ in range(2)] == [0, 1]
    started = time.monotonic()
    with pytest.raises(TimeoutException):
        acquirer.fetch(timeout=0.5)
    assert grab(acquirer, timeout_s=3.0).frame_id == 2
    assert time.monotonic() - started > 1.0
    assert grab(acquirer).frame_id == 3  # the stall happens once


def test_frames_without_a_queued_buffer_are_dropped_and_counted(fake_harvester: Harvester) -> None:
    acquirer = small_camera(fake_harvester)
    acquirer.num_buffers = 1
    nm = acquirer.remote_device.node_map
    nm.AcquisitionFrameRate.value = 200.0
    acquirer.start()
    with acquirer.fetch(timeout=2.0) as held:  # the only buffer stays with us: the camera has nowhere to write
        assert held.module.frame_id == 0
        time.sleep(0.2)
        dropped_while_held = nm.FakeDroppedFrames.value
    after = grab(acquirer)
    assert dropped_while_held >= 10
    assert after.frame_id >= dropped_while_held + 1  # the ids of the dropped frames are gaps
    acquirer.remote_device.node_map.AcquisitionStop.execute()
    generated, dropped = nm.FakeFrameCount.value, nm.FakeDroppedFrames.value
    assert generated - dropped in (2, 3)  # frame 0, `after`, and maybe one filled but not fetched
    assert dropped >= after.frame_id - 1
