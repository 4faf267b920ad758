"""Pixels from the fake producer equal the reference pattern, whatever the format and region of interest."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from daemon.cameras import pattern
from tests.cameras.genicam_support import acquiring, fake_settings

pytestmark = pytest.mark.genicam


@pytest.mark.parametrize(
    ("pixel_format", "dtype", "bits"),
    [("Mono8", np.uint8, 8), ("Mono16", np.uint16, 16), ("Mono12", np.uint16, 12)],
)
def test_frames_equal_the_reference_pattern(fake_cti: Path, pixel_format: str, dtype: type, bits: int) -> None:
    settings = fake_settings(fake_cti, width=160, height=120, pixel_format=pixel_format)
    with acquiring(settings) as cam:
        assert cam.pixel_format.bits == bits
        frames = [cam.read(2.0) for _ in range(4)]
    for frame in frames:
        assert frame is not None
        assert frame.pixels.dtype == dtype
        np.testing.assert_array_equal(frame.pixels, pattern.radial_sine(frame.frame_id, 120, 160, dtype, bits=bits))
    assert [f.frame_id for f in frames if f is not None] == [0, 1, 2, 3]


def test_offsets_move_the_roi_not_the_pattern(fake_cti: Path) -> None:
    settings = fake_settings(fake_cti, width=96, height=64, offset_x=100, offset_y=37, pixel_format="Mono8")
    with acquiring(settings) as cam:
        frame = cam.read(2.0)
        assert cam.settings.offset_x == 100
    assert frame is not None
    np.testing.assert_array_equal(frame.pixels, pattern.radial_sine(frame.frame_id, 64, 96, np.uint8))


def test_a_large_mono16_frame(fake_cti: Path) -> None:
    settings = fake_settings(fake_cti, width=2048, height=2048, pixel_format="Mono16", frame_rate_hz=100.0)
    with acquiring(settings) as cam:
        frame = cam.read(5.0)
    assert frame is not None
    assert frame.pixels.shape == (2048, 2048)
    np.testing.assert_array_equal(frame.pixels, pattern.radial_sine(frame.frame_id, 2048, 2048, np.uint16))


def test_frames_carry_device_timestamps_and_host_times(fake_cti: Path) -> None:
    with acquiring(fake_settings(fake_cti)) as cam:
        frames = [cam.read(2.0) for _ in range(5)]
    device = [f.device_timestamp_ns for f in frames if f is not None]
    host = [f.host_time_ns for f in frames if f is not None]
    assert len(device) == 5
    assert all(t is not None and t > 0 for t in device)
    assert device == sorted(device)
    assert host == sorted(host)


def test_frames_dropped_by_the_device_are_gaps(fake_cti: Path) -> None:
    import time

    settings = fake_settings(fake_cti, num_buffers=2, frame_rate_hz=500.0)
    with acquiring(settings) as cam:
        first = cam.read(2.0)
        time.sleep(0.1)  # the device fills its buffers, then drops frames (ids consumed)
        later = [cam.read(2.0) for _ in range(5)]  # 2 of harvesters' and 2 lent frame slots, then a gap
        stats = cam.stats
    assert first is not None
    ids = [first.frame_id] + [f.frame_id for f in later if f is not None]
    assert ids == sorted(ids)
    assert stats.gaps >= 1
    assert stats.frames_lost >= 10
    assert any(f is not None and f.flags & f.flags.AFTER_GAP for f in later)
