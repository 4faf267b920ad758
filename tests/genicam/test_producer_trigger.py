"""Software trigger and acquisition modes: frames come only when asked for."""

from __future__ import annotations

import pytest
from genicam.gentl import TimeoutException
from harvesters.core import Harvester, ImageAcquirer

from tests.fixtures.producer import grab

pytestmark = pytest.mark.genicam


@pytest.fixture
def acquirer(fake_harvester: Harvester) -> ImageAcquirer:
    acquirer = fake_harvester.create({"serial_number": "FAKE0001"})
    nm = acquirer.remote_device.node_map
    nm.Width.value = 64
    nm.Height.value = 64
    nm.AcquisitionFrameRate.value = 1000.0
    nm.ExposureTime.value = 100.0
    acquirer.num_buffers = 4
    return acquirer


def test_software_trigger_gives_one_frame_per_execute(acquirer: ImageAcquirer) -> None:
    nm = acquirer.remote_device.node_map
    nm.TriggerSelector.value = "FrameStart"
    nm.TriggerMode.value = "On"
    nm.TriggerSource.value = "Software"
    acquirer.start()
    assert acquirer.try_fetch(timeout=0.2) is None
    ids = []
    for _ in range(3):
        nm.TriggerSoftware.execute()
        ids.append(grab(acquirer).frame_id)
        assert acquirer.try_fetch(timeout=0.05) is None
    assert ids == [0, 1, 2]
    assert nm.FakeFrameCount.value == 3


def test_hardware_trigger_source_never_fires(acquirer: ImageAcquirer) -> None:
    nm = acquirer.remote_device.node_map
    nm.TriggerMode.value = "On"
    nm.TriggerSource.value = "Line0"
    acquirer.start()
    nm.TriggerSoftware.execute()
    assert acquirer.try_fetch(timeout=0.2) is None


def test_turning_the_trigger_off_resumes_free_run(acquirer: ImageAcquirer) -> None:
    nm = acquirer.remote_device.node_map
    nm.TriggerMode.value = "On"
    acquirer.start()
    assert acquirer.try_fetch(timeout=0.1) is None
    nm.TriggerMode.value = "Off"
    assert [grab(acquirer).frame_id for _ in range(3)] == [0, 1, 2]


def test_single_frame_mode_delivers_one_frame(acquirer: ImageAcquirer) -> None:
    acquirer.remote_device.node_map.AcquisitionMode.value = "SingleFrame"
    acquirer.start()
    assert grab(acquirer).frame_id == 0
    with pytest.raises(TimeoutException):
        acquirer.fetch(timeout=0.2)


def test_multi_frame_mode_delivers_the_frame_count(acquirer: ImageAcquirer) -> None:
    nm = acquirer.remote_device.node_map
    nm.AcquisitionMode.value = "MultiFrame"
    nm.AcquisitionFrameCount.value = 3
    acquirer.start()
    assert [grab(acquirer).frame_id for _ in range(3)] == [0, 1, 2]
    with pytest.raises(TimeoutException):
        acquirer.fetch(timeout=0.2)
