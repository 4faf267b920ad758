"""A pyramid is one OME-NGFF image: levels ``0``, ``1``... with doubling scales, the method recorded, and each
level chunked, sharded and compressed like level 0 (clamped to its size). ome-zarr-models validates 0.4 and 0.5.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import zarr
from ome_zarr_models import v04, v05

from daemon.storage import CompressionSettings, Dimension, StreamSettings, ZarrStream
from daemon.storage.settings import ArraySettings
from tests.storage.multiscale_support import CASES, Case, expected_level_count, pyramid_settings
from tests.storage.support import random_frames, write

OME_CASES = [case for case in CASES if case.name != "zcyx-append-space-outer"]  # OME wants space axes last


def multiscale_of(path: Path, key: str, version: int) -> dict[str, Any]:
    """The image's multiscale entry, after ome-zarr-models accepted the image."""
    group = zarr.open_group(str(path), path=key, mode="r")
    (v05.Image if version == 3 else v04.Image).from_zarr(group)
    if version == 3:
        attrs = json.loads((path / key / "zarr.json").read_text())["attributes"]
        assert attrs["ome"]["version"] == "0.5"
        entry: dict[str, Any] = attrs["ome"]["multiscales"][0]
        return entry
    entry = json.loads((path / key / ".zattrs").read_text())["multiscales"][0]
    assert entry["version"] == "0.4"
    return entry


def level_meta(path: Path, key: str, version: int) -> dict[str, Any]:
    meta: dict[str, Any] = json.loads((path / key / ("zarr.json" if version == 3 else ".zarray")).read_text())
    return meta


@pytest.mark.parametrize("method", ["mean", "decimate", "min", "max"])
@pytest.mark.parametrize("version", [2, 3])
@pytest.mark.parametrize("case", OME_CASES, ids=str)
def test_the_pyramid_is_a_valid_ome_image_with_doubling_scales(
    tmp_path: Path, case: Case, version: int, method: str
) -> None:
    path = tmp_path / "s.zarr"
    spec = case.spec
    write(pyramid_settings(path, spec, method, version=version, key="img"), random_frames(case.frames, spec[-2][2],
          spec[-1][2], "uint16"), batch=case.batch)  # fmt: skip
    entry = multiscale_of(path, "img", version)
    n_levels = expected_level_count(spec, None)
    assert [d["path"] for d in entry["datasets"]] == [str(n) for n in range(n_levels)]
    for n, dataset in enumerate(entry["datasets"]):
        want = [2.0**n if kind == "space" else 1.0 for _, kind, _, _ in spec]
        assert dataset["coordinateTransformations"] == [{"type": "scale", "scale": want}]
    assert entry["type"] == method
    assert entry["metadata"]["method"] == method
    assert entry["metadata"]["downsampled_axes"] == [name for name, kind, _, _ in spec if kind == "space"]


@pytest.mark.parametrize("version", [2, 3])
def test_scales_start_from_each_dimension_scale(tmp_path: Path, version: int) -> None:
    dimensions = [
        Dimension("t", "time", 0, 1, unit="second", scale=0.5),
        Dimension("z", "space", 6, 2, unit="micrometer", scale=2.0),
        Dimension("y", "space", 16, 4, unit="micrometer", scale=0.25),
        Dimension("x", "space", 16, 4, unit="micrometer", scale=0.125),
    ]
    array = ArraySettings(output_key="img", dimensions=dimensions, downsampling_method="max", max_levels=3)
    path = tmp_path / "s.zarr"
    write(StreamSettings(store_path=str(path), version=version, arrays=[array]), random_frames(7, 16, 16, "uint16"))
    entry = multiscale_of(path, "img", version)
    scales = [d["coordinateTransformations"][0]["scale"] for d in entry["datasets"]]
    assert scales == [[0.5, 2.0, 0.25, 0.125], [0.5, 4.0, 0.5, 0.25], [0.5, 8.0, 1.0, 0.5]]


def test_levels_keep_chunks_shards_and_codecs_clamped_to_their_size(tmp_path: Path) -> None:
    spec = [("t", "time", 0, 2), ("z", "space", 9, 4), ("y", "space", 40, 8), ("x", "space", 24, 8)]
    compression = CompressionSettings("blosc-lz4", 3, "bit")
    path = tmp_path / "s.zarr"
    s = pyramid_settings(path, spec, "mean", shards=[1, 2, 2, 2], compression=compression, key="img")
    write(s, random_frames(11, 40, 24, "uint16"))
    level0 = level_meta(path, "img/0", 3)
    codecs = level0["codecs"][0]["configuration"]["codecs"]
    # levels: z 9 -> 5 -> 3, y 40 -> 20 -> 10 -> 5, x 24 -> 12 -> 6 -> 3 (y fits one chunk of 8 at level 3)
    expected = [
        ([2, 9, 40, 24], [2, 4, 8, 8], [2, 8, 16, 16]),
        ([2, 5, 20, 12], [2, 4, 8, 8], [2, 8, 16, 16]),
        ([2, 3, 10, 6], [2, 3, 8, 6], [2, 3, 16, 6]),
        ([2, 2, 5, 3], [2, 2, 5, 3], [2, 2, 5, 3]),
    ]
    assert sorted(zarr.open_group(str(path), path="img", mode="r").array_keys()) == ["0", "1", "2", "3"]
    for n, (shape, chunks, shard) in enumerate(expected):
        meta = level_meta(path, f"img/{n}", 3)
        assert meta["shape"] == shape, n
        sharding = meta["codecs"][0]
        assert sharding["name"] == "sharding_indexed"
        assert sharding["configuration"]["chunk_shape"] == chunks, n
        assert meta["chunk_grid"]["configuration"]["chunk_shape"] == shard, n
        assert sharding["configuration"]["codecs"] == codecs
        assert meta["dimension_names"] == ["t", "z", "y", "x"]
        assert meta["data_type"] == "uint16"


def test_v2_levels_keep_the_compressor_and_clamp_chunks(tmp_path: Path) -> None:
    spec = [("z", "space", 0, 4), ("y", "space", 12, 8), ("x", "space", 10, 8)]
    path = tmp_path / "s.zarr"
    write(pyramid_settings(path, spec, "min", version=2, compression=CompressionSettings("zstd", 3)),
          random_frames(9, 12, 10, "uint16"))  # fmt: skip
    metas = [level_meta(path, str(n), 2) for n in range(2)]
    assert [m["shape"] for m in metas] == [[9, 12, 10], [5, 6, 5]]
    assert [m["chunks"] for m in metas] == [[4, 8, 8], [4, 6, 5]]
    assert metas[0]["compressor"] == metas[1]["compressor"] == {"id": "zstd", "level": 3}
    assert not (path / "2").exists()


@pytest.mark.parametrize(("max_levels", "levels"), [(None, 4), (3, 3), (2, 2), (1, 1)])
def test_max_levels_counts_level_zero(tmp_path: Path, max_levels: int | None, levels: int) -> None:
    spec = [("t", "time", 0, 1), ("y", "space", 32, 4), ("x", "space", 20, 4)]
    path = tmp_path / "s.zarr"
    s = pyramid_settings(path, spec, "decimate", max_levels=max_levels, dtype="uint8")
    write(s, random_frames(3, 32, 20, "uint8"))
    assert sorted(zarr.open_group(str(path), mode="r").array_keys()) == [str(n) for n in range(levels)]
    assert expected_level_count(spec, max_levels) == levels


def test_an_image_that_fits_one_chunk_has_level_zero_only(tmp_path: Path) -> None:
    spec = [("t", "time", 0, 4), ("y", "space", 8, 8), ("x", "space", 6, 8)]
    path = tmp_path / "s.zarr"
    with ZarrStream(pyramid_settings(path, spec, "mean")) as stream:
        stream.append(random_frames(3, 8, 6, "uint16"))
    assert list(zarr.open_group(str(path), mode="r").array_keys()) == ["0"]
    assert [d["path"] for d in multiscale_of(path, "", 3)["datasets"]] == ["0"]
    assert stream.frames_stored_by_level() == (3,)


@pytest.mark.parametrize("version", [2, 3])
def test_without_a_method_the_image_records_none(tmp_path: Path, version: int) -> None:
    spec = [("t", "time", 0, 1), ("y", "space", 32, 4), ("x", "space", 32, 4)]
    path = tmp_path / "s.zarr"
    write(pyramid_settings(path, spec, None, version=version), random_frames(2, 32, 32, "uint16"))
    entry = multiscale_of(path, "", version)
    assert "type" not in entry
    assert "metadata" not in entry
    assert [d["path"] for d in entry["datasets"]] == ["0"]
