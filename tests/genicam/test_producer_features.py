"""Camera features of the fake device: defaults, configuration, limits, and locking while acquiring."""

from __future__ import annotations

import pytest
from genicam.genapi import AccessException, OutOfRangeException
from harvesters.core import Harvester, ImageAcquirer

pytestmark = pytest.mark.genicam


@pytest.fixture
def acquirer(fake_harvester: Harvester) -> ImageAcquirer:
    return fake_harvester.create({"serial_number": "FAKE0001"})


def test_defaults(acquirer: ImageAcquirer) -> None:
    nm = acquirer.remote_device.node_map
    assert (nm.Width.value, nm.Height.value, nm.OffsetX.value, nm.OffsetY.value) == (512, 512, 0, 0)
    assert (nm.SensorWidth.value, nm.SensorHeight.value, nm.WidthMax.value, nm.HeightMax.value) == (4096,) * 4
    assert nm.PixelFormat.value == "Mono8"
    assert set(nm.PixelFormat.symbolics) == {"Mono8", "Mono12", "Mono16"}
    assert nm.PayloadSize.value == 512 * 512
    assert nm.AcquisitionMode.value == "Continuous"
    assert nm.TriggerMode.value == "Off"
    assert nm.TLParamsLocked.value == 0
    assert nm.ExposureTime.value == pytest.approx(1000.0)
    assert nm.AcquisitionFrameRate.value == pytest.approx(100.0)


def test_configuration_reads_back_and_sets_the_payload_size(acquirer: ImageAcquirer) -> None:
    nm = acquirer.remote_device.node_map
    nm.Width.value = 640
    nm.Height.value = 480
    nm.PixelFormat.value = "Mono16"
    nm.ExposureTime.value = 2500.0
    nm.AcquisitionFrameRate.value = 40.0
    nm.Gain.value = 6.5
    assert (nm.Width.value, nm.Height.value, nm.PixelFormat.value) == (640, 480, "Mono16")
    assert (nm.ExposureTime.value, nm.AcquisitionFrameRate.value, nm.Gain.value) == (2500.0, 40.0, 6.5)
    assert nm.PayloadSize.value == 640 * 480 * 2
    nm.PixelFormat.value = "Mono12"
    assert nm.PayloadSize.value == 640 * 480 * 2


def test_offsets_shrink_the_largest_roi(acquirer: ImageAcquirer) -> None:
    nm = acquirer.remote_device.node_map
    nm.OffsetX.value = 96
    nm.OffsetY.value = 4096 - 512
    assert (nm.WidthMax.value, nm.Width.max) == (4000, 4000)
    assert (nm.HeightMax.value, nm.Height.max) == (512, 512)
    with pytest.raises(OutOfRangeException):
        nm.Width.value = 4001
    with pytest.raises(OutOfRangeException):
        nm.OffsetY.value = 4096 - 511  # Height is 512


@pytest.mark.parametrize(
    ("feature", "value"), [("ExposureTime", 0.5), ("AcquisitionFrameRate", 0.0), ("Gain", 49.0), ("Width", 0)]
)
def test_out_of_range_values_are_refused(acquirer: ImageAcquirer, feature: str, value: float) -> None:
    node = getattr(acquirer.remote_device.node_map, feature)
    before = node.value
    with pytest.raises(OutOfRangeException):
        node.value = value
    assert node.value == before


@pytest.mark.parametrize(
    ("feature", "value"),
    [("Width", 256), ("Height", 256), ("OffsetX", 8), ("OffsetY", 8), ("PixelFormat", "Mono16")],
)
def test_roi_and_pixel_format_are_locked_while_acquiring(acquirer: ImageAcquirer, feature: str, value: object) -> None:
    node = getattr(acquirer.remote_device.node_map, feature)
    before = node.value
    acquirer.start()
    assert acquirer.remote_device.node_map.TLParamsLocked.value == 1
    with pytest.raises(AccessException):
        node.value = value
    assert node.value == before
    acquirer.stop()
    node.value = value
    assert node.value == value


def test_exposure_and_rate_can_change_while_acquiring(acquirer: ImageAcquirer) -> None:
    nm = acquirer.remote_device.node_map
    acquirer.start()
    nm.ExposureTime.value = 3000.0
    nm.AcquisitionFrameRate.value = 25.0
    assert (nm.ExposureTime.value, nm.AcquisitionFrameRate.value) == (3000.0, 25.0)
