"""Simulated frames are reproducible from their id: radial sine, seeded random, empty."""

from __future__ import annotations

import resource

import numpy as np
import pytest

from daemon.cameras import pattern
from daemon.cameras.settings import SimulatedCameraSettings, SimulatedFaults
from daemon.cameras.simulated import PHASES, SimulatedCamera, render_radial_sine
from daemon.ipc import shared_region
from daemon.ipc.frame import Frame


def frames(settings: SimulatedCameraSettings, count: int) -> list[Frame]:
    cam = SimulatedCamera(settings)
    cam.open()
    cam.configure()
    cam.start()
    out = []
    for _ in range(count):
        frame = cam.read(1.0)
        assert frame is not None
        out.append(frame)
    cam.close()
    return out


@pytest.mark.parametrize("frame_id", [0, 1, 127, 128, 1000, 2**40 + 3])
@pytest.mark.parametrize(("dtype", "bits"), [("uint8", 8), ("uint16", 16), ("uint16", 12), ("uint8", 5)])
def test_fast_radial_sine_equals_the_reference(frame_id: int, dtype: str, bits: int) -> None:
    expected = pattern.radial_sine(frame_id, 37, 53, dtype, bits=bits)
    got = render_radial_sine(frame_id, 37, 53, dtype, bits)
    assert got.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize(("height", "width"), [(1, 1), (1, 7), (6, 1), (2, 3), (64, 64), (65, 130), (300, 257)])
def test_fast_radial_sine_mirrors_every_shape_exactly(height: int, width: int) -> None:
    expected = pattern.radial_sine(9, height, width, np.uint16)
    got = render_radial_sine(9, height, width, "uint16", 16)
    assert got.shape == (height, width)
    assert got.flags.c_contiguous
    np.testing.assert_array_equal(got, expected)


def test_radial_sine_camera_frames_equal_the_reference_by_id() -> None:
    settings = SimulatedCameraSettings(pattern="radial_sine", height=64, width=96, dtype="uint16", bits=12)
    got = frames(settings, 5)
    assert [f.frame_id for f in got] == [0, 1, 2, 3, 4]
    for f in got:
        np.testing.assert_array_equal(f.pixels, pattern.radial_sine(f.frame_id, 64, 96, np.uint16, bits=12))
    assert int(got[0].pixels.max()) == 4095


def test_random_frames_depend_only_on_seed_and_id() -> None:
    settings = SimulatedCameraSettings(pattern="random", height=40, width=50, dtype="uint16", seed=3)
    first, second = frames(settings, 3), frames(settings, 3)
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a.pixels, b.pixels)
    assert not np.array_equal(first[0].pixels, first[1].pixels)
    other = frames(SimulatedCameraSettings(pattern="random", height=40, width=50, dtype="uint16", seed=4), 1)
    assert not np.array_equal(first[0].pixels, other[0].pixels)


def test_random_frames_respect_bits() -> None:
    settings = SimulatedCameraSettings(pattern="random", height=64, width=64, dtype="uint16", bits=10)
    pixels = frames(settings, 1)[0].pixels
    assert int(pixels.max()) <= 1023
    assert int(pixels.max()) > 900  # uses the range, not a constant


def test_empty_frames_are_zero_in_the_asked_dtype() -> None:
    f = frames(SimulatedCameraSettings(pattern="empty", height=3, width=4, dtype="uint16"), 1)[0]
    assert f.pixels.dtype == np.uint16
    assert f.pixels.shape == (3, 4)
    assert not f.pixels.any()


def test_frames_carry_device_and_host_times() -> None:
    got = frames(SimulatedCameraSettings(height=8, width=8), 3)
    device = [f.device_timestamp_ns for f in got]
    assert all(t is not None for t in device)
    assert device == sorted(device)
    assert [f.host_time_ns for f in got] == sorted(f.host_time_ns for f in got)


def test_radial_sine_phases_are_drawn_once_and_shared_read_only() -> None:
    settings = SimulatedCameraSettings(pattern="radial_sine", height=48, width=64, dtype="uint16", frame_period_s=0)
    got = frames(settings, PHASES + 2)
    for frame in got:
        np.testing.assert_array_equal(frame.pixels, pattern.radial_sine(frame.frame_id, 48, 64, np.uint16))
        assert not frame.pixels.flags.writeable
    assert np.shares_memory(got[0].pixels, got[PHASES].pixels)  # one phase, drawn once
    assert not np.shares_memory(got[0].pixels, got[1].pixels)


@pytest.mark.parametrize(("side", "cache_mib", "cached"), [(64, 1, True), (65, 1, False), (8, 0, False)])
def test_frames_are_cached_only_when_every_phase_fits_the_budget(side: int, cache_mib: int, cached: bool) -> None:
    # PHASES (128) uint16 frames of 64x64 take exactly 1 MiB
    settings = SimulatedCameraSettings(
        pattern="radial_sine", height=side, width=side, frame_period_s=0, phase_cache_mib=cache_mib
    )
    got = frames(settings, PHASES + 1)
    assert got[0].pixels.flags.writeable is not cached
    assert got[0].pixels.flags.owndata is not cached
    assert np.shares_memory(got[0].pixels, got[PHASES].pixels) is cached
    for frame in (got[1], got[PHASES]):
        np.testing.assert_array_equal(frame.pixels, pattern.radial_sine(frame.frame_id, side, side, np.uint16))


def test_the_default_budget_caches_1024x1024_uint16_and_draws_2048x2048() -> None:
    small = frames(SimulatedCameraSettings(height=1024, width=1024, frame_period_s=0), 1)[0]
    assert not small.pixels.flags.writeable
    large = frames(SimulatedCameraSettings(height=2048, width=2048, frame_period_s=0), 1)[0]
    assert large.pixels.flags.owndata


@pytest.mark.skipif(not shared_region.available(), reason="sealed memfd files are Linux-only")
def test_kept_frames_lie_in_a_shared_region_until_the_camera_closes() -> None:
    # so the frame stream sends them to a worker on this host by reference (tests/ipc/test_shared_region.py)
    cam = SimulatedCamera(SimulatedCameraSettings(height=32, width=32, frame_period_s=0))
    cam.open()
    cam.configure()
    cam.start()
    first, second = cam.read(1.0), cam.read(1.0)
    assert first is not None
    assert second is not None
    found = shared_region.locate(first.pixels)
    assert found is not None
    assert shared_region.locate(second.pixels) == (found[0], 32 * 32 * 2)  # the next phase, right after it
    cam.stop()
    cam.configure()  # configured again: a new cache, the old one's frames are no longer looked up
    assert shared_region.locate(first.pixels) is None
    cam.start()
    again = cam.read(1.0)
    assert again is not None
    assert shared_region.locate(again.pixels) is not None
    cam.close()
    assert shared_region.locate(again.pixels) is None
    np.testing.assert_array_equal(again.pixels, pattern.radial_sine(0, 32, 32, np.uint16))  # still readable


def test_without_a_shared_region_the_cache_falls_back_to_private_memory() -> None:
    # A file size limit (as a test of storage errors sets for the worker it spawns) refuses the region's memfd.
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, hard))  # the 64x64 cache needs 1 MiB + a header page
    try:
        got = frames(SimulatedCameraSettings(height=64, width=64, frame_period_s=0, phase_cache_mib=1), PHASES + 1)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    assert np.shares_memory(got[0].pixels, got[PHASES].pixels)  # still kept, once per phase
    assert shared_region.locate(got[0].pixels) is None
    np.testing.assert_array_equal(got[PHASES].pixels, pattern.radial_sine(PHASES, 64, 64, np.uint16))


def test_a_damaged_frame_leaves_its_cached_phase_intact() -> None:
    faults = SimulatedFaults(incomplete_every=PHASES)
    settings = SimulatedCameraSettings(pattern="radial_sine", height=16, width=16, frame_period_s=0, faults=faults)
    got = frames(settings, PHASES + 1)
    assert got[PHASES].incomplete
    assert not got[PHASES].pixels[8:].any()
    np.testing.assert_array_equal(got[0].pixels, pattern.radial_sine(0, 16, 16, np.uint16))  # same phase, intact
