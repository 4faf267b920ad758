"""A second reader: tensorstore (the C++ library data users open large stores with) reads what the engine writes.

zarr-python is the oracle everywhere else; this module checks that a stricter, independent implementation of the
Zarr v2 and v3 specs (sharding included) opens acqd's arrays from their metadata alone and sees the values sent:
every codec and shuffle, every layout, several data types, every level of a pyramid, ragged edges, the per-frame
table, and a store streamed to S3.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
import tensorstore as ts

from daemon.storage import CompressionSettings, ZarrStream
from daemon.storage.s3_settings import S3Settings
from tests.fixtures.s3 import SeaweedServer
from tests.storage.multiscale_support import CASES, Case, stream_and_compare
from tests.storage.support import (
    dims,
    expected_array,
    final_shape,
    random_frames,
    settings,
    wait_for_stored,
    write,
    write_with_table,
)

SPEC = [("t", "time", 0, 4), ("y", "space", 45, 16), ("x", "space", 38, 16)]  # ragged chunks at both edges
LAYOUTS = {"v2": (2, None), "v3": (3, None), "v3-sharded": (3, [2, 2, 2])}
COMPRESSIONS = [None] + [
    CompressionSettings(codec, 1, shuffle)
    for codec in ("blosc-lz4", "blosc-zstd", "blosc-blosclz", "blosc-zlib")
    for shuffle in ("none", "byte", "bit")
] + [CompressionSettings("zstd", 3)]  # fmt: skip
PYRAMID_CASES = [c for c in CASES if c.name in ("tczyx", "zyx-fixed-odd", "czyx-fixed-short")]  # 5D, odd, short


def compression_id(compression: CompressionSettings | None) -> str:
    if compression is None:
        return "raw"
    return f"{compression.codec_enum.value}-{compression.shuffle_enum.value}"


def ts_read(kvstore: Mapping[str, Any], version: int) -> npt.NDArray[Any]:
    """Open the array at ``kvstore`` from its metadata alone (no schema given) and read all of it."""
    spec = {"driver": "zarr3" if version == 3 else "zarr", "kvstore": dict(kvstore)}
    array = ts.open(spec, open=True, read=True).result()
    return np.asarray(array.read().result())


def local(path: Path, array_path: str) -> dict[str, Any]:
    return {"driver": "file", "path": str(path / array_path) + "/"}


@pytest.mark.parametrize("compression", COMPRESSIONS, ids=compression_id)
@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_every_codec_and_layout_reads_back_equal(
    tmp_path: Path, layout: str, compression: CompressionSettings | None
) -> None:
    version, shards = LAYOUTS[layout]
    path = tmp_path / "s.zarr"
    frames = random_frames(11, 45, 38, "uint16", seed=3)  # 11 frames: the last chunk (and shard) is partial
    write(settings(path, dims(SPEC, shards), version=version, compression=compression), frames)
    got = ts_read(local(path, "0"), version)
    np.testing.assert_array_equal(got, expected_array(frames, final_shape(SPEC, len(frames))))


@pytest.mark.parametrize("dtype", ["uint8", "int16", "uint32", "int64", "float32", "float64"])
@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_data_types_read_back_equal(tmp_path: Path, layout: str, dtype: str) -> None:
    version, shards = LAYOUTS[layout]
    path = tmp_path / "s.zarr"
    frames = random_frames(6, 45, 38, dtype, seed=4)
    compression = CompressionSettings("blosc-lz4", 1, "bit")
    write(settings(path, dims(SPEC, shards), dtype=dtype, version=version, compression=compression), frames)
    got = ts_read(local(path, "0"), version)
    assert got.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(got, expected_array(frames, final_shape(SPEC, len(frames))))


@pytest.mark.parametrize("method", ["mean", "decimate"])
@pytest.mark.parametrize("layout", list(LAYOUTS))
@pytest.mark.parametrize("case", PYRAMID_CASES, ids=str)
def test_every_pyramid_level_reads_back_equal(tmp_path: Path, case: Case, layout: str, method: str) -> None:
    version, shards = LAYOUTS[layout]

    def read_level(path: Path, array_path: str) -> npt.NDArray[Any]:
        return ts_read(local(path, array_path), version)

    n_levels = stream_and_compare(tmp_path / "p.zarr", case, method, version, shards is not None, "uint16", read_level)
    assert n_levels >= 2


def test_a_running_stream_shows_tensorstore_only_its_claimed_frames(tmp_path: Path) -> None:
    path = tmp_path / "r.zarr"
    spec = [("t", "time", 0, 2), ("y", "space", 8, 4), ("x", "space", 8, 8)]
    frames = random_frames(7, 8, 8, "uint16")
    with ZarrStream(settings(path, dims(spec, [2, 2, 1]))) as stream:  # shard rows of 4 frames
        stream.append(frames)
        wait_for_stored(stream, 4)
        np.testing.assert_array_equal(ts_read(local(path, "0"), 3), frames[:4])
    np.testing.assert_array_equal(ts_read(local(path, "0"), 3), frames)


@pytest.mark.parametrize("version", [2, 3])
def test_the_frame_table_reads_back_equal(tmp_path: Path, version: int) -> None:
    path = tmp_path / "t.zarr"
    frames = random_frames(7, 45, 38, "uint16", seed=5)
    write_with_table(settings(path, dims(SPEC), version=version), frames, chunk_rows=4)  # the last chunk partial
    k = np.arange(7)
    np.testing.assert_array_equal(ts_read(local(path, "frames/frame_id"), version), k)
    np.testing.assert_array_equal(ts_read(local(path, "frames/device_timestamp_ns"), version), 10 * k)
    np.testing.assert_array_equal(ts_read(local(path, "frames/host_time_ns"), version), 100 * k)
    np.testing.assert_array_equal(ts_read(local(path, "0"), version), frames)


@pytest.mark.slow
@pytest.mark.s3
def test_a_store_streamed_to_s3_reads_back_equal_over_s3(
    s3_server: SeaweedServer, s3_settings: S3Settings, s3_env: dict[str, str]
) -> None:
    """tensorstore's own S3 client, pointed at the same server, reads the sharded store the engine uploaded."""
    bucket = s3_server.make_bucket()
    prefix = "runs/ts.zarr"
    lz4 = CompressionSettings("blosc-lz4", 1)
    s = settings(f"s3://{bucket}/{prefix}", dims(SPEC, [2, 2, 2]), compression=lz4, s3=s3_settings)
    frames = random_frames(11, 45, 38, "uint16", seed=6)
    write(s, frames)
    kvstore = {
        "driver": "s3",
        "bucket": bucket,
        "path": f"{prefix}/0/",
        "endpoint": s3_server.endpoint,
        "aws_region": "us-east-1",
        "aws_credentials": {"type": "environment"},
    }
    got = ts_read(kvstore, 3)
    np.testing.assert_array_equal(got, expected_array(frames, final_shape(SPEC, len(frames))))
