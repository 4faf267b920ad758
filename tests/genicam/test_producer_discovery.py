"""Harvesters discovers the fake devices with their identities, in the device list and in the node map."""

from __future__ import annotations

import pytest
from genicam.gentl import ResourceInUseException
from harvesters.core import Harvester

pytestmark = pytest.mark.genicam


def test_lists_two_devices_by_default(fake_harvester: Harvester) -> None:
    infos = fake_harvester.device_info_list
    assert [(i.id_, i.serial_number, i.user_defined_name) for i in infos] == [
        ("FAKE0001", "FAKE0001", "cam0"),
        ("FAKE0002", "FAKE0002", "cam1"),
    ]
    assert {(i.vendor, i.model, i.tl_type) for i in infos} == {("acqd", "acqd-fake", "Custom")}


@pytest.mark.parametrize("count", [0, 1, 3])
def test_device_count_comes_from_the_environment(
    fake_harvester: Harvester, monkeypatch: pytest.MonkeyPatch, count: int
) -> None:
    monkeypatch.setenv("FAKE_GENTL_DEVICES", str(count))
    fake_harvester.update()
    serials = [i.serial_number for i in fake_harvester.device_info_list]
    assert serials == [f"FAKE{n:04d}" for n in range(1, count + 1)]


def test_node_map_identity_matches_the_device_list(fake_harvester: Harvester) -> None:
    acquirer = fake_harvester.create({"serial_number": "FAKE0002"})
    node_map = acquirer.remote_device.node_map
    assert node_map.DeviceVendorName.value == "acqd"
    assert node_map.DeviceModelName.value == "acqd-fake"
    assert node_map.DeviceSerialNumber.value == "FAKE0002"
    assert node_map.DeviceUserID.value == "cam1"


def test_user_id_is_writable_until_the_library_closes(fake_harvester: Harvester) -> None:
    acquirer = fake_harvester.create({"user_defined_name": "cam0"})
    acquirer.remote_device.node_map.DeviceUserID.value = "left"
    acquirer.destroy()
    reopened = fake_harvester.create({"serial_number": "FAKE0001"})
    assert reopened.remote_device.node_map.DeviceUserID.value == "left"
    reopened.destroy()
    fake_harvester.update()  # closes and reopens the library: names return to cam0, cam1
    assert [i.user_defined_name for i in fake_harvester.device_info_list] == ["cam0", "cam1"]


def test_an_open_device_cannot_be_opened_twice(fake_harvester: Harvester) -> None:
    fake_harvester.create({"serial_number": "FAKE0001"})
    with pytest.raises(ResourceInUseException):
        fake_harvester.create({"serial_number": "FAKE0001"})
