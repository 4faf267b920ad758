"""Start/stop/create/destroy cycles, reconfiguration between runs and two devices acquiring at once."""

from __future__ import annotations

import numpy as np
import pytest
from harvesters.core import Harvester

from daemon.cameras.pattern import radial_sine
from tests.fixtures.producer import grab

pytestmark = pytest.mark.genicam


def test_reconfigure_between_runs(fake_harvester: Harvester) -> None:
    acquirer = fake_harvester.create({"serial_number": "FAKE0001"})
    nm = acquirer.remote_device.node_map
    acquirer.start()
    first = grab(acquirer)
    acquirer.stop()
    nm.Width.value = 320
    nm.Height.value = 96
    nm.PixelFormat.value = "Mono16"
    acquirer.start()
    second = grab(acquirer)
    acquirer.stop()
    np.testing.assert_array_equal(first.image, radial_sine(first.frame_id, 512, 512, np.uint8))
    np.testing.assert_array_equal(second.image, radial_sine(second.frame_id, 96, 320, np.uint16))


def test_twenty_start_stop_cycles(fake_harvester: Harvester) -> None:
    acquirer = fake_harvester.create({"serial_number": "FAKE0001"})
    acquirer.remote_device.node_map.Width.value = 128
    acquirer.remote_device.node_map.Height.value = 128
    for _ in range(20):
        acquirer.start()
        assert grab(acquirer).frame_id == 0
        acquirer.stop()
        assert not acquirer.is_acquiring()


def test_twenty_create_start_stop_destroy_cycles(fake_harvester: Harvester) -> None:
    for cycle in range(20):
        acquirer = fake_harvester.create({"serial_number": f"FAKE000{cycle % 2 + 1}"})
        acquirer.start()
        frame = grab(acquirer)
        acquirer.stop()
        acquirer.destroy()
        assert frame.image.shape == (512, 512)


def test_twenty_library_reloads(fake_harvester: Harvester) -> None:
    for _ in range(20):
        fake_harvester.update()  # GCCloseLib + GCInitLib
        acquirer = fake_harvester.create({"serial_number": "FAKE0002"})
        acquirer.start()
        assert grab(acquirer).frame_id == 0
    assert len(fake_harvester.device_info_list) == 2


def test_two_devices_acquire_at_once(fake_harvester: Harvester) -> None:
    left = fake_harvester.create({"serial_number": "FAKE0001"})
    right = fake_harvester.create({"serial_number": "FAKE0002"})
    right.remote_device.node_map.PixelFormat.value = "Mono16"
    left.start()
    right.start()
    frames = [(grab(left), grab(right)) for _ in range(3)]
    for lf, rf in frames:
        np.testing.assert_array_equal(lf.image, radial_sine(lf.frame_id, 512, 512, np.uint8))
        np.testing.assert_array_equal(rf.image, radial_sine(rf.frame_id, 512, 512, np.uint16))


def test_destroy_while_acquiring_releases_the_device(fake_harvester: Harvester) -> None:
    acquirer = fake_harvester.create({"serial_number": "FAKE0001"})
    acquirer.start()
    grab(acquirer)
    acquirer.destroy()
    again = fake_harvester.create({"serial_number": "FAKE0001"})
    again.start()
    assert grab(again).frame_id == 0
