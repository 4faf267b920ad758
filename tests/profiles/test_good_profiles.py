"""Good profiles: every shipped example validates, and a profile becomes exactly the settings objects it names."""

from __future__ import annotations

from pathlib import Path
from types import MappingProxyType

import pytest

from daemon.cameras.settings import DeviceSelector, GenicamCameraSettings, SimulatedCameraSettings, SimulatedFaults
from daemon.profile import (
    ACQUISITION_KEYS,
    MULTISCALE_KEYS,
    STORAGE_KEYS,
    TOP_KEYS,
    AcquisitionSettings,
    load_profile,
    parse_profile,
    parse_size,
)
from daemon.profile_cameras import CAMERA_KEYS, DIMENSION_KEYS
from daemon.profile_fields import field_names
from daemon.storage.s3_settings import S3Settings
from daemon.storage.settings import ArraySettings, CompressionSettings, Dimension, StreamSettings

PROFILES = Path(__file__).resolve().parents[2] / "config" / "profiles"
SHIPPED = sorted(PROFILES.glob("*.yaml"))


def test_the_shipped_examples_are_the_documented_five() -> None:
    assert [path.name for path in SHIPPED] == ["5d.yaml", "demo.yaml", "genicam.yaml", "s3.yaml", "two_cameras.yaml"]


@pytest.mark.parametrize("path", SHIPPED, ids=lambda path: path.stem)
def test_every_shipped_example_is_valid(path: Path, tmp_path: Path) -> None:
    profile = load_profile(path, tmp_path)
    assert profile.cameras
    assert len(profile.cameras) == len(profile.stream.arrays)


def test_demo_becomes_exactly_its_settings(tmp_path: Path) -> None:
    profile = load_profile(PROFILES / "demo.yaml", tmp_path)
    spatial = {"type": "space", "array_size_px": 512, "chunk_size_px": 256, "shard_size_chunks": 2}
    array = ArraySettings(
        output_key="",
        data_type="uint16",
        dimensions=[
            Dimension("t", "time", 0, 64, shard_size_chunks=1, unit="second", scale=0.01),
            Dimension("y", **spatial, unit="micrometer", scale=0.5),
            Dimension("x", **spatial, unit="micrometer", scale=0.5),
        ],
        compression=CompressionSettings("blosc-lz4", 1, "byte"),
    )
    assert profile.stream == StreamSettings(
        store_path=str(tmp_path / "demo.zarr"),
        version=3,
        overwrite=True,
        arrays=[array],
        max_threads=2,
        custom_metadata={"description": "acqd demo, simulated radial sine", "operator": "demo"},
    )
    assert [camera.name for camera in profile.cameras] == ["sim"]
    assert profile.cameras[0].settings == SimulatedCameraSettings(
        pattern="radial_sine", height=512, width=512, dtype="uint16", frame_period_s=0.01, trigger="free"
    )
    assert profile.cameras[0].array is profile.stream.arrays[0]
    assert profile.acquisition == AcquisitionSettings(frames=200, queue_bytes=256 * 2**20, on_queue_full="block")
    assert profile.data_root == tmp_path


def test_genicam_example_selects_by_serial_and_keeps_node_order(tmp_path: Path) -> None:
    profile = load_profile(PROFILES / "genicam.yaml", tmp_path)
    settings = profile.cameras[0].settings
    assert settings == GenicamCameraSettings(
        producers=(),
        select=DeviceSelector(serial_number="23041234"),
        pixel_format="Mono12",
        width=1024,
        height=1024,
        offset_x=448,
        offset_y=28,
        exposure_time_us=5000.0,
        frame_rate_hz=50.0,
        gain=0.0,
        trigger_mode="Off",
        nodes=MappingProxyType({"ExposureAuto": "Off", "BlackLevel": 10, "ReverseX": False}),
        timeout_s=2.0,
        on_lost="reconnect",
        reconnect_attempts=5,
        reconnect_backoff_s=0.5,
        reconnect_backoff_max_s=5.0,
        num_buffers=16,
    )
    assert isinstance(settings, GenicamCameraSettings)
    assert list(settings.nodes) == ["ExposureAuto", "BlackLevel", "ReverseX"]
    assert profile.stream.arrays[0].dtype.name == "uint16"
    assert profile.acquisition == AcquisitionSettings(duration_s=60.0, queue_bytes=2**30, on_queue_full="drop")


def test_two_cameras_write_two_arrays_in_camera_order(tmp_path: Path) -> None:
    profile = load_profile(PROFILES / "two_cameras.yaml", tmp_path)
    assert [(c.name, c.array.output_key) for c in profile.cameras] == [
        ("brightfield", "sample1/brightfield"),
        ("fluorescence", "sample1/fluorescence"),
    ]
    assert [a.output_key for a in profile.stream.arrays] == ["sample1/brightfield", "sample1/fluorescence"]
    assert [a.dtype.name for a in profile.stream.arrays] == ["uint8", "uint16"]
    assert int(profile.stream.version) == 2
    assert profile.stream.arrays[0].compression == CompressionSettings("zstd", 3, "none")


def test_s3_example_keeps_the_url_and_builds_s3_settings(tmp_path: Path) -> None:
    profile = load_profile(PROFILES / "s3.yaml", tmp_path)
    assert profile.stream.store_path == "s3://acqd-data/runs/sim.zarr"
    assert profile.stream.s3 == S3Settings(
        endpoint="http://127.0.0.1:8333",
        region="us-east-1",
        part_size=16 * 2**20,
        max_attempts=5,
        connect_timeout_s=5.0,
        read_timeout_s=30.0,
    )
    assert profile.acquisition.until_stopped is True


def test_5d_example_orders_dimensions_outermost_first(tmp_path: Path) -> None:
    profile = load_profile(PROFILES / "5d.yaml", tmp_path)
    dims = profile.stream.arrays[0].dimensions
    assert [(d.name, d.kind.value, d.array_size_px) for d in dims] == [
        ("t", "time", 0),
        ("c", "channel", 2),
        ("z", "space", 16),
        ("y", "space", 256),
        ("x", "space", 256),
    ]
    assert profile.stream.custom_metadata == {"sample": {"id": "S-042", "stain": "DAPI"}, "channels": ["DAPI", "GFP"]}


MINIMAL = """\
cameras:
  - name: cam
    driver: {driver}
    settings: {settings}
    dimensions:
      - {{name: t, type: time, array_size_px: 0, chunk_size_px: 8}}
      - {{name: y, type: space, array_size_px: 64, chunk_size_px: 32}}
      - {{name: x, type: space, array_size_px: 64, chunk_size_px: 32}}
    {extra}
acquisition: {{until_stopped: true}}
storage: {{store: m.zarr}}
"""


def test_left_out_keys_take_the_settings_defaults(tmp_path: Path) -> None:
    text = MINIMAL.format(driver="simulated", settings="{height: 64, width: 64}", extra="")
    profile = parse_profile(text, "m.yaml", tmp_path)
    assert profile.cameras[0].settings == SimulatedCameraSettings(height=64, width=64)
    assert profile.stream == StreamSettings(store_path=str(tmp_path / "m.zarr"), arrays=profile.stream.arrays)
    assert profile.stream.arrays[0].compression is None
    assert profile.acquisition == AcquisitionSettings(until_stopped=True)


def test_a_genicam_camera_without_pixel_format_takes_the_data_type_given(tmp_path: Path) -> None:
    text = MINIMAL.format(driver="genicam", settings="{select: {index: 0}}", extra="data_type: uint8")
    profile = parse_profile(text, "m.yaml", tmp_path)
    assert profile.stream.arrays[0].dtype.name == "uint8"
    assert profile.cameras[0].settings == GenicamCameraSettings(select=DeviceSelector(index=0))


def test_the_data_root_defaults_to_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ACQD_DATA_ROOT", str(tmp_path / "env-root"))
    text = MINIMAL.format(driver="simulated", settings="{height: 64, width: 64}", extra="")
    assert parse_profile(text).stream.store_path == str(tmp_path / "env-root" / "m.zarr")


@pytest.mark.parametrize(
    ("text", "size"),
    [("4096", 4096), ("256 MiB", 256 * 2**20), ("1GiB", 2**30), ("1.5 MB", 1_500_000), ("64 KiB", 65536)],
)
def test_sizes_take_units(text: str, size: int) -> None:
    assert parse_size(text) == size


def test_the_examples_document_every_key_a_profile_accepts() -> None:
    text = "\n".join(path.read_text() for path in SHIPPED)
    keys = {*TOP_KEYS, *ACQUISITION_KEYS, *STORAGE_KEYS, *MULTISCALE_KEYS, *CAMERA_KEYS, *DIMENSION_KEYS}
    for cls in (SimulatedCameraSettings, SimulatedFaults, GenicamCameraSettings, DeviceSelector, S3Settings):
        keys.update(field_names(cls))
    keys.update(field_names(CompressionSettings))
    assert sorted(key for key in keys if f"{key}:" not in text) == []
