"""Helpers for the GenICam camera tests on the fake producer (fixture ``fake_cti`` in tests/fixtures/producer.py)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from daemon.cameras.genicam import GenicamCamera
from daemon.cameras.settings import DeviceSelector, GenicamCameraSettings

FAST = {"frame_rate_hz": 1000.0, "exposure_time_us": 10.0}


def fake_settings(cti: Path, serial: str = "FAKE0001", **kwargs: Any) -> GenicamCameraSettings:
    """Settings for one fake device; small, fast frames unless overridden."""
    values: dict[str, Any] = {"width": 64, "height": 48, "pixel_format": "Mono16", **FAST, **kwargs}
    values.setdefault("select", DeviceSelector(serial_number=serial))
    return GenicamCameraSettings(producers=(str(cti),), **values)


def silent_settings(cti: Path, serial: str = "FAKE0001", **kwargs: Any) -> GenicamCameraSettings:
    """A camera that waits for a software trigger that never comes (no watchdog)."""
    return fake_settings(cti, serial, trigger_mode="On", trigger_source="Software", timeout_s=None, **kwargs)


def producer_mapped(cti: Path) -> bool:
    """The producer library is loaded in this process."""
    return cti.name in Path("/proc/self/maps").read_text()


@contextmanager
def acquiring(settings: GenicamCameraSettings) -> Iterator[GenicamCamera]:
    cam = GenicamCamera(settings)
    try:
        cam.open()
        cam.configure()
        cam.start()
        yield cam
    finally:
        cam.close()
