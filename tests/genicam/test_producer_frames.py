"""Frames from the fake producer: pixels equal the reference radial sine, ids count from 0, time is paced."""

from __future__ import annotations

import itertools

import numpy as np
import numpy.typing as npt
import pytest
from harvesters.core import Harvester, ImageAcquirer

from daemon.cameras.pattern import radial_sine
from tests.fixtures.producer import Grabbed, grab

pytestmark = pytest.mark.genicam


def configure(
    fake_harvester: Harvester, width: int, height: int, pixel_format: str, *, rate_hz: float = 100.0
) -> ImageAcquirer:
    acquirer = fake_harvester.create({"serial_number": "FAKE0001"})
    nm = acquirer.remote_device.node_map
    nm.Width.value = width
    nm.Height.value = height
    nm.PixelFormat.value = pixel_format
    nm.AcquisitionFrameRate.value = rate_hz
    acquirer.num_buffers = 8
    return acquirer


def grab_many(acquirer: ImageAcquirer, count: int) -> list[Grabbed]:
    acquirer.start()
    frames = [grab(acquirer) for _ in range(count)]
    acquirer.stop()
    return frames


@pytest.mark.parametrize(
    ("width", "height", "pixel_format", "dtype", "bits"),
    [
        (512, 512, "Mono8", np.uint8, 8),
        (512, 512, "Mono16", np.uint16, 16),
        (512, 512, "Mono12", np.uint16, 12),
        (640, 360, "Mono8", np.uint8, 8),
        (333, 201, "Mono16", np.uint16, 16),
        (2048, 2048, "Mono16", np.uint16, 16),
    ],
)
def test_pixels_equal_the_reference_pattern(
    fake_harvester: Harvester,
    width: int,
    height: int,
    pixel_format: str,
    dtype: type[np.unsignedinteger],
    bits: int,
) -> None:
    frames = grab_many(configure(fake_harvester, width, height, pixel_format), 4)
    for frame in frames:
        assert frame.image.dtype == np.dtype(dtype)
        assert frame.image.shape == (height, width)
        expected: npt.NDArray[np.generic] = radial_sine(frame.frame_id, height, width, dtype, bits)
        np.testing.assert_array_equal(frame.image, expected)
    assert len({f.image.tobytes() for f in frames}) == len(frames)  # the rings move


def test_mono12_stays_within_12_bits(fake_harvester: Harvester) -> None:
    (frame,) = grab_many(configure(fake_harvester, 256, 256, "Mono12"), 1)
    assert int(frame.image.max()) == 4095
    assert int(frame.image.min()) == 0


def test_roi_offsets_are_reported_and_the_pattern_is_centred_on_the_roi(fake_harvester: Harvester) -> None:
    acquirer = configure(fake_harvester, 300, 200, "Mono8")
    acquirer.remote_device.node_map.OffsetX.value = 100
    acquirer.remote_device.node_map.OffsetY.value = 50
    acquirer.start()
    with acquirer.fetch(timeout=2.0) as buffer:
        offsets = (buffer.module.offset_x, buffer.module.offset_y)
        component = buffer.payload.components[0]
        image = np.array(component.data.reshape(component.height, component.width))
        frame_id = buffer.module.frame_id
    assert offsets == (100, 50)
    np.testing.assert_array_equal(image, radial_sine(frame_id, 200, 300, np.uint8))


def test_frame_ids_count_from_zero_with_increasing_timestamps(fake_harvester: Harvester) -> None:
    frames = grab_many(configure(fake_harvester, 128, 128, "Mono8", rate_hz=50.0), 10)
    assert [f.frame_id for f in frames] == list(range(10))
    stamps = [f.timestamp_ns for f in frames]
    assert all(b > a for a, b in itertools.pairwise(stamps))


@pytest.mark.parametrize(("rate_hz", "exposure_us", "period_s"), [(50.0, 1000.0, 0.020), (100.0, 40_000.0, 0.040)])
def test_frames_are_paced_by_the_slower_of_rate_and_exposure(
    fake_harvester: Harvester, rate_hz: float, exposure_us: float, period_s: float
) -> None:
    acquirer = configure(fake_harvester, 64, 64, "Mono8", rate_hz=rate_hz)
    acquirer.remote_device.node_map.ExposureTime.value = exposure_us
    frames = grab_many(acquirer, 9)
    intervals_s = [
        (b.timestamp_ns - a.timestamp_ns) / 1e9 / (b.frame_id - a.frame_id) for a, b in itertools.pairwise(frames)
    ]
    median_s = sorted(intervals_s)[len(intervals_s) // 2]  # robust to a frame delayed by a busy machine
    assert 0.8 * period_s < median_s < 1.5 * period_s


def test_frame_ids_restart_at_zero_on_each_start(fake_harvester: Harvester) -> None:
    acquirer = configure(fake_harvester, 64, 64, "Mono8")
    first = grab_many(acquirer, 3)
    second = grab_many(acquirer, 3)
    assert [f.frame_id for f in first] == [0, 1, 2]
    assert [f.frame_id for f in second] == [0, 1, 2]
    assert second[-1].timestamp_ns > first[-1].timestamp_ns
