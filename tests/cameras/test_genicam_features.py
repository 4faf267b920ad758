"""Configuring the fake device: what is asked is written, in order; errors say what the device offers."""

from __future__ import annotations

from pathlib import Path

import pytest

from daemon.cameras.genicam import GenicamCamera
from daemon.cameras.settings import DeviceSelector, GenicamCameraSettings
from daemon.errors import ConfigError
from tests.cameras.genicam_support import fake_settings

pytestmark = pytest.mark.genicam


def configured(settings: GenicamCameraSettings) -> GenicamCamera:
    cam = GenicamCamera(settings)
    cam.open()
    try:
        cam.configure()
    except BaseException:
        cam.close()
        raise
    return cam


def read(cam: GenicamCamera, name: str) -> object:
    return cam.read_feature(name)


def test_settings_reach_the_device(fake_cti: Path) -> None:
    settings = fake_settings(
        fake_cti,
        width=200,
        height=100,
        offset_x=8,
        offset_y=4,
        pixel_format="Mono12",
        exposure_time_us=250.0,
        frame_rate_hz=40.0,
        gain=3.5,
    )
    cam = configured(settings)
    try:
        values = {n: read(cam, n) for n in ("Width", "Height", "OffsetX", "OffsetY", "PixelFormat")}
        assert values == {"Width": 200, "Height": 100, "OffsetX": 8, "OffsetY": 4, "PixelFormat": "Mono12"}
        assert read(cam, "ExposureTime") == pytest.approx(250.0)
        assert read(cam, "AcquisitionFrameRate") == pytest.approx(40.0)
        assert read(cam, "Gain") == pytest.approx(3.5)
        assert cam.shape == (100, 200)
    finally:
        cam.close()


def test_unset_settings_leave_the_device_alone(fake_cti: Path) -> None:
    cam = configured(GenicamCameraSettings(producers=(str(fake_cti),), select=DeviceSelector(index=0)))
    try:
        assert (read(cam, "Width"), read(cam, "Height"), read(cam, "PixelFormat")) == (512, 512, "Mono8")
        assert read(cam, "AcquisitionFrameRate") == pytest.approx(100.0)
        assert cam.shape == (512, 512)
    finally:
        cam.close()


def test_a_wide_roi_after_an_offset_is_set_in_a_working_order(fake_cti: Path) -> None:
    first = configured(fake_settings(fake_cti, width=96, offset_x=4000))
    first.close()
    cam = configured(fake_settings(fake_cti, width=4000, offset_x=96))  # would fail if Width went before OffsetX=0
    try:
        assert (read(cam, "Width"), read(cam, "OffsetX")) == (4000, 96)
    finally:
        cam.close()


def test_nodes_map_sets_any_feature_in_order(fake_cti: Path) -> None:
    cam = configured(fake_settings(fake_cti, nodes={"DeviceUserID": "renamed", "FaultStallMs": 7, "Gain": 1}))
    try:
        assert read(cam, "DeviceUserID") == "renamed"
        assert read(cam, "FaultStallMs") == 7
        assert read(cam, "Gain") == pytest.approx(1.0)
    finally:
        cam.close()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"nodes": {"ExposureTme": 5.0}}, r"has no feature 'ExposureTme'; close names: ExposureTime"),
        ({"nodes": {"Zzzzzz": 1}}, r"has no feature 'Zzzzzz'; it offers: .*AcquisitionFrameRate.*Width"),
        ({"width": 5000}, r"Width=5000 is out of range \[1, 4096\]"),
        ({"gain": 60.0}, r"Gain=60.0 is out of range \[0, 48\] dB"),
        ({"exposure_time_us": 0.5}, r"ExposureTime=0.5 is out of range \[1, 1e\+07\] us"),
        ({"nodes": {"PayloadSize": 10}}, r"feature PayloadSize is read-only; cannot set it to 10"),
        ({"nodes": {"DeviceSerialNumber": "X"}}, r"feature DeviceSerialNumber is read-only"),
        ({"trigger_source": "Line7"}, r"TriggerSource='Line7' is not offered; entries: Software, Line0"),
        ({"nodes": {"Width": "wide"}}, r"Width takes an integer. Got 'wide' instead."),
        ({"nodes": {"Width": 10.5}}, r"Width takes an integer. Got 10.5 instead."),
        ({"nodes": {"Gain": True}}, r"Gain takes a number. Got True instead."),
        ({"nodes": {"DeviceUserID": 3}}, r"DeviceUserID takes a string. Got 3 instead."),
    ],
)
def test_feature_errors_say_what_the_device_offers(fake_cti: Path, kwargs: dict[str, object], message: str) -> None:
    cam = GenicamCamera(fake_settings(fake_cti, **kwargs))
    cam.open()
    try:
        with pytest.raises(ConfigError, match=message) as info:
            cam.configure()
        assert "camera FAKE0001" in str(info.value)
    finally:
        cam.close()


def test_formats_acqd_cannot_unpack_are_refused_before_the_device_is_touched(fake_cti: Path) -> None:
    cam = GenicamCamera(fake_settings(fake_cti, pixel_format="Mono12p"))
    cam.open()
    try:
        with pytest.raises(ConfigError, match=r"cannot unpack pixel format 'Mono12p'.*Supported: Mono8"):
            cam.configure()
        assert read(cam, "PixelFormat") == "Mono8"
    finally:
        cam.close()


def test_a_supported_format_the_device_lacks_lists_its_entries(fake_cti: Path) -> None:
    cam = GenicamCamera(fake_settings(fake_cti, pixel_format="RGB8"))
    cam.open()
    try:
        with pytest.raises(ConfigError, match=r"PixelFormat='RGB8' is not offered; entries: Mono8, Mono12, Mono16"):
            cam.configure()
    finally:
        cam.close()


def test_integral_floats_are_accepted_for_integers(fake_cti: Path) -> None:
    cam = configured(fake_settings(fake_cti, nodes={"Width": 80.0}))
    try:
        assert read(cam, "Width") == 80
    finally:
        cam.close()
