"""ZarrStream writes v2 and v3 stores (sharded, compressed) to S3; zarr-python reads back every value.

zarr reads a local copy of the objects (fetched with boto3), not S3 itself: zarr's FsspecStore needs s3fs, whose
aiobotocore pins an older botocore than the one acqd runs on, so installing it would change the shared virtualenv.
A byte-for-byte copy of every object under the prefix checks the same thing, and also shows exactly which objects
the stream left in the bucket.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import zarr

from daemon.errors import StoreExistsError
from daemon.storage import ArraySettings, CompressionSettings, Dimension, StreamSettings, ZarrStream
from daemon.storage.s3_settings import S3Settings
from tests.fixtures.s3 import SeaweedServer, download

pytestmark = pytest.mark.s3


T, C = 37, 2  # 37 time points: a ragged last chunk and shard


def dims(shard: int | None, ny: int, nx: int) -> list[Dimension]:
    return [
        Dimension("t", "time", 0, 8, shard),
        Dimension("c", "channel", C, 1, 1 if shard else None),
        Dimension("y", "space", ny, ny // 2, shard and 2),
        Dimension("x", "space", nx, nx // 2, shard and 2),
    ]


# version, shard_size_chunks of t, compression, dtype, frame shape
CASES: dict[str, tuple[int, int | None, CompressionSettings | None, str, tuple[int, int]]] = {
    "v2-blosc-lz4": (2, None, CompressionSettings("blosc-lz4", 1, "byte"), "uint16", (96, 128)),
    "v3-sharded-blosc-zstd": (3, 4, CompressionSettings("blosc-zstd", 3, "bit"), "int32", (96, 128)),
    "v3-sharded-zstd": (3, 2, CompressionSettings("zstd", 3), "float32", (96, 128)),
    # raw shards of 32 t x 512 x 512 x 2 B = 16 MiB: each one a multipart upload of 5 MiB parts
    "v3-sharded-multipart-raw": (3, 4, None, "uint16", (512, 512)),
}


@pytest.mark.slow
@pytest.mark.parametrize("case", list(CASES))
def test_every_value_reads_back(s3_server: SeaweedServer, s3_settings: S3Settings, tmp_path: Path, case: str) -> None:
    version, shard, compression, dtype, (ny, nx) = CASES[case]
    bucket = s3_server.make_bucket()
    settings = StreamSettings(
        store_path=f"s3://{bucket}/runs/{case}.zarr",
        version=version,
        arrays=[ArraySettings(data_type=dtype, dimensions=dims(shard, ny, nx), compression=compression)],
        max_threads=2,
        s3=s3_settings,
    )
    rng = np.random.default_rng(7)
    frames = rng.integers(0, 1000, size=(T * C, ny, nx)).astype(dtype)
    with ZarrStream(settings) as stream:
        stream.append(frames[:10])
        for frame in frames[10:]:
            stream.append(frame)
    keys = download(s3_server, bucket, f"runs/{case}.zarr", tmp_path / "copy.zarr")
    assert not [k for k in keys if k.endswith((".partial", ".tmp"))]
    assert s3_server.uploads(bucket) == []
    array: Any = zarr.open_array(tmp_path / "copy.zarr" / "0", mode="r")
    assert array.shape == (T, C, ny, nx)
    np.testing.assert_array_equal(array[:], frames.reshape(T, C, ny, nx))
    heads = [s3_server.client().head_object(Bucket=bucket, Key=f"runs/{case}.zarr/{k}") for k in keys]
    multipart = {h["ETag"] for h in heads if h["ContentLength"] > s3_settings.part_size}
    assert bool(multipart) == (case == "v3-sharded-multipart-raw")
    parts = {-(-h["ContentLength"] // s3_settings.part_size) for h in heads if h["ETag"] in multipart}
    assert {etag.strip('"').rsplit("-", 1)[1] for etag in multipart} == {str(n) for n in parts}  # "<md5>-<parts>"


def test_an_existing_s3_store_is_refused_unless_overwrite(s3_server: SeaweedServer, s3_settings: S3Settings) -> None:
    bucket = s3_server.make_bucket()
    s3_server.client().put_object(Bucket=bucket, Key="runs/a.zarr/old-object", Body=b"x")
    array = ArraySettings(data_type="uint8", dimensions=dims(None, 8, 8))
    settings = StreamSettings(store_path=f"s3://{bucket}/runs/a.zarr", arrays=[array], s3=s3_settings)
    with pytest.raises(StoreExistsError, match=f"s3://{bucket}/runs/a.zarr"):
        ZarrStream(settings)
    with ZarrStream(dataclasses.replace(settings, overwrite=True)) as stream:
        stream.append(np.ones((C, 8, 8), dtype="uint8"))
    assert s3_server.object_size(bucket, "runs/a.zarr/old-object") is None
    assert s3_server.object_size(bucket, "runs/a.zarr/zarr.json")
