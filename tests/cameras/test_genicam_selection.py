"""Choosing the fake device by serial number, user id, model or index; the error lists the devices found."""

from __future__ import annotations

from pathlib import Path

import pytest

from daemon.cameras.factory import open_camera
from daemon.cameras.gentl_producers import ENV_VAR
from daemon.cameras.settings import DeviceSelector, GenicamCameraSettings
from daemon.errors import CameraError
from tests.cameras.genicam_support import acquiring, fake_settings

pytestmark = pytest.mark.genicam


@pytest.mark.parametrize(
    ("selector", "serial"),
    [
        (DeviceSelector(serial_number="FAKE0002"), "FAKE0002"),
        (DeviceSelector(user_id="cam0"), "FAKE0001"),
        (DeviceSelector(index=1), "FAKE0002"),
        (DeviceSelector(model="acqd-fake", index=0), "FAKE0001"),
    ],
)
def test_selector_opens_the_right_device(fake_cti: Path, selector: DeviceSelector, serial: str) -> None:
    cam = open_camera(GenicamCameraSettings(producers=(str(fake_cti),), select=selector))
    try:
        assert cam.info["serial_number"] == serial
        assert cam.info["model"] == "acqd-fake"
        assert cam.info["vendor"] == "acqd"
    finally:
        cam.close()


def test_ambiguous_choice_lists_every_device(fake_cti: Path) -> None:
    with pytest.raises(CameraError) as info:
        open_camera(GenicamCameraSettings(producers=(str(fake_cti),)))
    message = str(info.value)
    assert "2 devices match" in message
    assert "serial_number='FAKE0001' user_id='cam0'" in message
    assert "serial_number='FAKE0002' user_id='cam1'" in message
    assert str(fake_cti) in message


def test_no_match_lists_every_device(fake_cti: Path) -> None:
    with pytest.raises(CameraError, match=r"serial_number='NOPE'\): no device matches. Devices found: #0"):
        open_camera(GenicamCameraSettings(producers=(str(fake_cti),), select=DeviceSelector(serial_number="NOPE")))


def test_producer_found_through_the_environment(
    fake_cti: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "producers"  # the build folder may also hold the ASan variant, unloadable without libasan
    folder.mkdir()
    (folder / fake_cti.name).symlink_to(fake_cti)
    monkeypatch.setenv(ENV_VAR, f"{tmp_path / 'missing'}:{folder}")
    cam = open_camera(GenicamCameraSettings(select=DeviceSelector(user_id="cam1")))
    assert cam.info["serial_number"] == "FAKE0002"
    cam.close()


def test_two_devices_acquire_at_once(fake_cti: Path) -> None:
    with (
        acquiring(fake_settings(fake_cti, "FAKE0001")) as first,
        acquiring(fake_settings(fake_cti, "FAKE0002")) as second,
    ):
        a, b = first.read(2.0), second.read(2.0)
        first.close()
        again = second.read(2.0)  # closing one camera leaves the other running
    assert a is not None
    assert b is not None
    assert again is not None
    assert again.frame_id > b.frame_id


def test_a_device_already_in_use_is_a_camera_error(fake_cti: Path) -> None:
    first = open_camera(fake_settings(fake_cti, "FAKE0001"))
    try:
        with pytest.raises(CameraError, match=r"opening a camera \(serial_number='FAKE0001'\) via .* in use"):
            open_camera(fake_settings(fake_cti, "FAKE0001"))
    finally:
        first.close()
    open_camera(fake_settings(fake_cti, "FAKE0001")).close()  # free again once closed
