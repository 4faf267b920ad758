"""Each array is an OME-NGFF image (0.5 with Zarr v3, 0.4 with Zarr v2) that ome-zarr-models accepts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import zarr
from ome_zarr_models import v04, v05
from structlog.testing import capture_logs

from daemon.storage import ArraySettings, Dimension, StreamSettings, ZarrStream
from tests.storage.support import dims, random_frames, read, settings, write

SPEC_5D = [
    ("t", "time", 0, 2),
    ("c", "channel", 2, 1),
    ("z", "space", 3, 3),
    ("y", "space", 8, 8),
    ("x", "space", 8, 8),
]


def validate(path: Path, key: str, version: int) -> Any:
    group = zarr.open_group(str(path), path=key, mode="r")
    model = v05.Image if version == 3 else v04.Image
    return model.from_zarr(group)


def image_attributes(path: Path, key: str, version: int) -> dict[str, Any]:
    if version == 3:
        attrs: dict[str, Any] = json.loads((path / key / "zarr.json").read_text())["attributes"]
        return attrs
    attrs = json.loads((path / key / ".zattrs").read_text())
    return attrs


@pytest.mark.parametrize("version", [2, 3])
@pytest.mark.parametrize(
    "spec",
    [
        pytest.param(SPEC_5D, id="tczyx"),
        pytest.param([("t", "time", 0, 1), ("y", "space", 8, 8), ("x", "space", 8, 8)], id="tyx"),
        pytest.param([("c", "channel", 0, 1), ("y", "space", 8, 8), ("x", "space", 8, 8)], id="cyx"),
        pytest.param([("z", "space", 0, 1), ("y", "space", 8, 8), ("x", "space", 8, 8)], id="zyx"),
        pytest.param([("t", "time", 0, 1), ("p", "other", 3, 1), ("y", "space", 8, 8), ("x", "space", 8, 8)],
                     id="t-other-yx"),
    ],
)  # fmt: skip
def test_each_array_is_a_valid_ome_image(tmp_path: Path, version: int, spec: list[tuple[str, str, int, int]]) -> None:
    path = tmp_path / "s.zarr"
    frames = random_frames(6, 8, 8, "uint16")
    write(settings(path, dims(spec), version=version, key="img"), frames)
    image = validate(path, "img", version)
    multiscales = image.attributes.ome.multiscales if version == 3 else image.attributes.multiscales
    assert [a.name for a in multiscales[0].axes] == [name for name, *_ in spec]
    assert [d.path for d in multiscales[0].datasets] == ["0"]
    expected_version = "0.5" if version == 3 else "0.4"
    attrs = image_attributes(path, "img", version)
    assert (attrs["ome"]["version"] if version == 3 else attrs["multiscales"][0]["version"]) == expected_version


@pytest.mark.parametrize("version", [2, 3])
def test_axes_carry_types_units_and_scales(tmp_path: Path, version: int) -> None:
    dimensions = [
        Dimension("t", "time", 0, 1, unit="second", scale=0.5),
        Dimension("p", "other", 2, 1),
        Dimension("y", "space", 8, 8, unit="micrometer", scale=0.25),
        Dimension("x", "space", 8, 8, unit="micrometer", scale=0.125),
    ]
    path = tmp_path / "s.zarr"
    write(settings(path, dimensions, version=version, key="img"), random_frames(2, 8, 8, "uint16"))
    validate(path, "img", version)
    attrs = image_attributes(path, "img", version)
    multiscale = attrs["ome"]["multiscales"][0] if version == 3 else attrs["multiscales"][0]
    assert multiscale["axes"] == [
        {"name": "t", "type": "time", "unit": "second"},
        {"name": "p"},
        {"name": "y", "type": "space", "unit": "micrometer"},
        {"name": "x", "type": "space", "unit": "micrometer"},
    ]
    assert multiscale["datasets"][0]["coordinateTransformations"] == [
        {"type": "scale", "scale": [0.5, 1.0, 0.25, 0.125]}
    ]


@pytest.mark.parametrize("version", [2, 3])
def test_an_image_at_the_root_shares_the_root_group_with_custom_metadata(tmp_path: Path, version: int) -> None:
    path = tmp_path / "s.zarr"
    s = settings(path, dims(SPEC_5D), version=version, custom_metadata={"operator": "ada", "run": {"n": 1}})
    write(s, random_frames(6, 8, 8, "uint16"))
    validate(path, "", version)
    assert dict(zarr.open_group(str(path), mode="r").attrs)["operator"] == "ada"
    assert dict(zarr.open_group(str(path), mode="r").attrs)["run"] == {"n": 1}


@pytest.mark.parametrize("version", [2, 3])
def test_several_arrays_in_one_store_with_their_groups(tmp_path: Path, version: int) -> None:
    path = tmp_path / "s.zarr"
    spec = [("t", "time", 0, 2), ("y", "space", 8, 8), ("x", "space", 6, 3)]
    keys = ["sample1/brightfield", "sample1/fluorescence", "sample2/a/b"]
    arrays = [ArraySettings(output_key=k, data_type="uint16", dimensions=dims(spec)) for k in keys]
    frames = {k: random_frames(3 + i, 8, 6, "uint16", seed=i) for i, k in enumerate(keys)}
    s = StreamSettings(store_path=str(path), version=version, arrays=arrays, custom_metadata='{"lab": "x"}')
    with ZarrStream(s) as stream:
        for i in range(5):
            for key in keys:
                if i < len(frames[key]):
                    stream.append(frames[key][i], key=key)
        assert [stream.frames_appended(k) for k in keys] == [3, 4, 5]
    root = zarr.open_group(str(path), mode="r")
    assert dict(root.attrs) == {"lab": "x"}
    for group in ("sample1", "sample2", "sample2/a"):
        assert isinstance(root[group], zarr.Group)
    for key in keys:
        validate(path, key, version)
        np.testing.assert_array_equal(read(path, f"{key}/0"), frames[key])


@pytest.mark.parametrize("version", [2, 3])
@pytest.mark.parametrize(
    ("spec", "reason"),
    [
        ([("c", "channel", 0, 1), ("t", "time", 2, 1), ("y", "space", 4, 4), ("x", "space", 4, 4)], "time axis"),
        ([("a", "other", 0, 1), ("c", "channel", 2, 1), ("y", "space", 4, 4), ("x", "space", 4, 4)], "channel or"),
        ([("t", "time", 0, 1), ("a", "other", 2, 1), ("b", "other", 2, 1), ("y", "space", 4, 4),
          ("x", "space", 4, 4)], "channel or"),
        ([("t", "time", 0, 1), ("c", "channel", 2, 1), ("a", "space", 2, 1), ("z", "space", 2, 1),
          ("y", "space", 4, 4), ("x", "space", 4, 4)], "2 to 5 axes"),
    ],
)  # fmt: skip
def test_a_layout_ome_cannot_describe_is_written_without_ome_and_a_warning(
    tmp_path: Path, version: int, spec: list[tuple[str, str, int, int]], reason: str
) -> None:
    path = tmp_path / "s.zarr"
    frames = random_frames(5, 4, 4, "uint8")
    with capture_logs() as logs:
        write(settings(path, dims(spec), dtype="uint8", version=version, key="img"), frames)
    warnings = [e for e in logs if e["event"] == "ome_metadata_skipped"]
    assert len(warnings) == 1
    assert warnings[0]["log_level"] == "warning"
    assert any(reason in r for r in warnings[0]["reasons"])
    if version == 3:
        assert image_attributes(path, "img", version) == {}
    else:
        assert not (path / "img" / ".zattrs").exists()
    shape = [size for _, _, size, _ in spec]
    shape[0] = -(-5 // int(np.prod(shape[1:-2])))
    flat = np.zeros((int(np.prod(shape[:-2])), 4, 4), dtype="uint8")
    flat[:5] = frames
    np.testing.assert_array_equal(read(path, "img/0"), flat.reshape(shape))


def test_v3_array_metadata_names_dimensions_and_codecs(tmp_path: Path) -> None:
    path = tmp_path / "s.zarr"
    spec = [("t", "time", 0, 2), ("y", "space", 8, 4), ("x", "space", 8, 4)]
    from daemon.storage import CompressionSettings

    s = settings(path, dims(spec, [1, 2, 2]), compression=CompressionSettings("blosc-zstd", 3, "bit"))
    write(s, random_frames(3, 8, 8, "uint16"))
    meta = json.loads((path / "0" / "zarr.json").read_text())
    assert meta["dimension_names"] == ["t", "y", "x"]
    assert meta["chunk_key_encoding"] == {"name": "default", "configuration": {"separator": "/"}}
    sharding = meta["codecs"][0]
    assert sharding["name"] == "sharding_indexed"
    assert sharding["configuration"]["index_location"] == "end"
    assert sharding["configuration"]["index_codecs"] == [
        {"name": "bytes", "configuration": {"endian": "little"}},
        {"name": "crc32c"},
    ]
    assert sharding["configuration"]["codecs"] == [
        {"name": "bytes", "configuration": {"endian": "little"}},
        {
            "name": "blosc",
            "configuration": {
                "typesize": 2,
                "cname": "zstd",
                "clevel": 3,
                "shuffle": "bitshuffle",
                "blocksize": 1 << 20,
            },
        },
    ]
    assert meta["chunk_grid"]["configuration"]["chunk_shape"] == [2, 8, 8]
    assert meta["shape"] == [3, 8, 8]


def test_v2_array_metadata_uses_slash_separator_and_numcodecs_json(tmp_path: Path) -> None:
    path = tmp_path / "s.zarr"
    spec = [("t", "time", 0, 2), ("y", "space", 8, 4), ("x", "space", 8, 4)]
    from daemon.storage import CompressionSettings

    s = settings(path, dims(spec), dtype="int16", version=2, compression=CompressionSettings("zstd", 5))
    write(s, random_frames(3, 8, 8, "int16"))
    meta = json.loads((path / "0" / ".zarray").read_text())
    assert meta["dimension_separator"] == "/"
    assert meta["dtype"] == "<i2"
    assert meta["compressor"] == {"id": "zstd", "level": 5}
    assert meta["shape"] == [3, 8, 8]
    assert (path / "0" / "1" / "1" / "1").is_file()
    assert json.loads((path / ".zgroup").read_text()) == {"zarr_format": 2}
