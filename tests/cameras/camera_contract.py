"""The contract every Camera passes: subclass :class:`CameraContract` once per implementation.

A subclass provides ``make_camera()`` (a NEW camera), ``expected_layout()`` and ``expected_pixels(frame)`` (the
oracle for a frame's pixels, from its id). ``read_frame`` triggers first when the camera is software-triggered.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from daemon.cameras.camera import Camera, CameraState, FrameLayout
from daemon.errors import CameraError
from daemon.ipc.frame import Frame


class CameraContract:
    read_timeout_s = 5.0
    software_triggered = False

    def make_camera(self) -> Camera:
        raise NotImplementedError

    def expected_layout(self) -> FrameLayout:
        raise NotImplementedError

    def expected_pixels(self, frame: Frame) -> np.ndarray[Any, Any]:
        raise NotImplementedError

    # -- helpers ------------------------------------------------------------------------------------------------

    @pytest.fixture
    def camera(self) -> Iterator[Camera]:
        cam = self.make_camera()
        try:
            yield cam
        finally:
            cam.close()

    @pytest.fixture
    def acquiring(self, camera: Camera) -> Camera:
        camera.open()
        camera.configure()
        camera.start()
        return camera

    def read_frame(self, camera: Camera) -> Frame:
        if self.software_triggered:
            camera.trigger()
        frame = camera.read(self.read_timeout_s)
        assert frame is not None, f"no frame within {self.read_timeout_s} s"
        return frame

    # -- lifecycle ----------------------------------------------------------------------------------------------

    def test_has_every_member_of_the_protocol(self, camera: Camera) -> None:
        members = [name for name in vars(Camera) if not name.startswith("_")]
        assert "read" in members
        missing = [name for name in members if not hasattr(type(camera), name)]
        assert missing == []

    def test_lifecycle_goes_through_its_states(self, camera: Camera) -> None:
        assert camera.state is CameraState.NEW
        camera.open()
        assert camera.state is CameraState.OPEN
        camera.configure()
        assert camera.state is CameraState.CONFIGURED
        camera.start()
        assert camera.state is CameraState.ACQUIRING
        camera.stop()
        assert camera.state is CameraState.CONFIGURED
        camera.close()
        assert camera.state is CameraState.CLOSED

    def test_read_before_start_raises(self, camera: Camera) -> None:
        camera.open()
        camera.configure()
        with pytest.raises(CameraError, match="cannot read while configured"):
            camera.read(0.01)

    def test_start_before_configure_raises(self, camera: Camera) -> None:
        camera.open()
        with pytest.raises(CameraError, match="cannot start while open"):
            camera.start()

    def test_configure_while_acquiring_raises(self, acquiring: Camera) -> None:
        with pytest.raises(CameraError, match="cannot configure while acquiring"):
            acquiring.configure()

    def test_layout_is_unknown_before_configure(self, camera: Camera) -> None:
        camera.open()
        with pytest.raises(CameraError, match="after configure"):
            _ = camera.shape

    def test_info_names_the_device_once_open(self, camera: Camera) -> None:
        assert dict(camera.info) == {}
        camera.open()
        assert camera.info.get("model")

    def test_close_is_idempotent(self, camera: Camera) -> None:
        camera.open()
        camera.close()
        camera.close()
        assert camera.state is CameraState.CLOSED

    def test_close_before_open_is_fine(self, camera: Camera) -> None:
        camera.close()
        assert camera.state is CameraState.CLOSED

    def test_close_while_acquiring_stops(self, acquiring: Camera) -> None:
        self.read_frame(acquiring)
        acquiring.close()
        assert acquiring.state is CameraState.CLOSED
        with pytest.raises(CameraError, match="cannot read while closed"):
            acquiring.read(0.01)

    def test_closed_camera_cannot_reopen(self, camera: Camera) -> None:
        camera.close()
        with pytest.raises(CameraError, match="cannot open while closed"):
            camera.open()

    def test_stop_when_not_acquiring_does_nothing(self, camera: Camera) -> None:
        camera.open()
        camera.configure()
        camera.stop()
        camera.stop()
        assert camera.state is CameraState.CONFIGURED

    def test_start_stop_is_repeatable(self, camera: Camera) -> None:
        camera.open()
        camera.configure()
        for _ in range(3):
            camera.start()
            first = self.read_frame(camera)
            second = self.read_frame(camera)
            assert second.frame_id > first.frame_id
            camera.stop()
        assert camera.stats.frames_delivered == 6

    # -- frames -------------------------------------------------------------------------------------------------

    def test_layout_matches_the_settings_and_the_frames(self, acquiring: Camera) -> None:
        expected = self.expected_layout()
        assert acquiring.layout == expected
        assert acquiring.shape == expected.shape
        assert acquiring.dtype == expected.dtype
        frame = self.read_frame(acquiring)
        assert frame.pixels.shape == expected.shape
        assert frame.pixels.dtype == expected.dtype

    def test_read_returns_a_frame_within_the_timeout(self, acquiring: Camera) -> None:
        began = time.monotonic()
        frame = self.read_frame(acquiring)
        assert time.monotonic() - began < self.read_timeout_s
        assert isinstance(frame, Frame)
        before = time.time_ns()
        later = self.read_frame(acquiring)
        assert before <= later.host_time_ns <= time.time_ns()

    def test_read_is_bounded_by_its_timeout(self, acquiring: Camera) -> None:
        began = time.monotonic()
        result = acquiring.read(0.05)
        assert result is None or isinstance(result, Frame)
        assert time.monotonic() - began < 0.05 + 0.5

    def test_pixels_match_the_oracle(self, acquiring: Camera) -> None:
        for _ in range(3):
            frame = self.read_frame(acquiring)
            np.testing.assert_array_equal(frame.pixels, self.expected_pixels(frame))

    def test_pixels_are_owned_or_immutable(self, acquiring: Camera) -> None:
        first = self.read_frame(acquiring)
        kept = first.pixels.copy()
        assert first.pixels.flags.c_contiguous
        if first.pixels.flags.writeable:  # its own memory or frame slot: writing into it must not leak anywhere
            first.pixels[...] = 7
            kept[...] = 7
        else:  # shared (a simulated camera's cached phase): nobody may change it
            with pytest.raises(ValueError, match="read-only"):
                first.pixels[...] = 7
        for _ in range(3):
            later = self.read_frame(acquiring)
            np.testing.assert_array_equal(later.pixels, self.expected_pixels(later))
        np.testing.assert_array_equal(first.pixels, kept)  # later frames did not overwrite it

    def test_frame_ids_increase(self, acquiring: Camera) -> None:
        ids = [self.read_frame(acquiring).frame_id for _ in range(5)]
        assert ids == sorted(set(ids))

    def test_stats_count_delivered_frames(self, acquiring: Camera) -> None:
        for _ in range(4):
            self.read_frame(acquiring)
        stats = acquiring.stats
        assert stats.frames_delivered == 4
        assert stats.incomplete_frames == 0
        assert stats.reconnects == 0
