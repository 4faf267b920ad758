"""Choosing a device by serial number, model, user id or index; errors list every device found."""

from __future__ import annotations

import pytest

from daemon.cameras.device_selection import DeviceEntry, choose_device
from daemon.cameras.settings import DeviceSelector
from daemon.errors import CameraError

DEVICES = [
    DeviceEntry(0, "acqd", "acqd-fake", "FAKE0001", "cam0"),
    DeviceEntry(1, "acqd", "acqd-fake", "FAKE0002", "cam1"),
    DeviceEntry(2, "other", "big-sensor", "B-7", None),
]


@pytest.mark.parametrize(
    ("selector", "position"),
    [
        (DeviceSelector(serial_number="FAKE0002"), 1),
        (DeviceSelector(user_id="cam0"), 0),
        (DeviceSelector(model="big-sensor"), 2),
        (DeviceSelector(index=2), 2),
        (DeviceSelector(model="acqd-fake", index=1), 1),
        (DeviceSelector(model="acqd-fake", user_id="cam1"), 1),
    ],
)
def test_selector_picks_one_device(selector: DeviceSelector, position: int) -> None:
    assert choose_device(DEVICES, selector).position == position


def test_the_only_device_needs_no_criteria() -> None:
    assert choose_device(DEVICES[:1], DeviceSelector()).serial_number == "FAKE0001"


def test_no_match_lists_the_devices() -> None:
    with pytest.raises(CameraError) as info:
        choose_device(DEVICES, DeviceSelector(serial_number="NOPE"))
    message = str(info.value)
    assert "serial_number='NOPE'" in message
    assert "no device matches" in message
    for serial in ("FAKE0001", "FAKE0002", "B-7"):
        assert serial in message


def test_several_matches_ask_for_more_criteria() -> None:
    with pytest.raises(CameraError, match=r"2 devices match; add serial_number, user_id or index"):
        choose_device(DEVICES, DeviceSelector(model="acqd-fake"))


def test_index_past_the_matches() -> None:
    with pytest.raises(CameraError, match=r"index 2 is past the 2 matching device\(s\)"):
        choose_device(DEVICES, DeviceSelector(model="acqd-fake", index=2))


def test_no_devices_at_all() -> None:
    with pytest.raises(CameraError, match=r"no device matches. Devices found: none"):
        choose_device([], DeviceSelector())
