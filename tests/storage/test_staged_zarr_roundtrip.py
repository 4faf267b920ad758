"""ZarrStream writes v2 and v3 sharded stores through a staged S3 store (``s3.staging_dir``): after close every
object is in S3, zarr-python reads back every value, and the staging folder is empty."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import zarr

from daemon.storage import ArraySettings, CompressionSettings, StreamSettings, ZarrStream
from daemon.storage.s3_settings import S3Settings
from daemon.storage.staged_store import StagedS3Store
from daemon.storage.upload_queue import UploadState
from tests.fixtures.s3 import SeaweedServer, download
from tests.storage.staged_support import staged_settings
from tests.storage.test_s3_zarr_roundtrip import C, T, dims

pytestmark = pytest.mark.s3

# version, shard_size_chunks of t, compression, dtype, frame shape
CASES: dict[str, tuple[int, int | None, CompressionSettings | None, str, tuple[int, int]]] = {
    "v2-blosc-lz4": (2, None, CompressionSettings("blosc-lz4", 1, "byte"), "uint16", (64, 96)),
    "v3-sharded-zstd": (3, 4, CompressionSettings("zstd", 3), "int32", (64, 96)),
    # raw shards of 32 t x 384 x 384 x 2 B = 9 MiB: each one a multipart upload of 5 MiB parts
    "v3-sharded-multipart-raw": (3, 4, None, "uint16", (384, 384)),
}


@pytest.mark.slow
@pytest.mark.parametrize("case", list(CASES))
def test_every_value_reads_back_from_s3(
    s3_server: SeaweedServer, s3_settings: S3Settings, tmp_path: Path, case: str
) -> None:
    version, shard, compression, dtype, (ny, nx) = CASES[case]
    bucket = s3_server.make_bucket()
    staging = tmp_path / "staging"
    settings = StreamSettings(
        store_path=f"s3://{bucket}/runs/{case}.zarr",
        version=version,
        arrays=[ArraySettings(data_type=dtype, dimensions=dims(shard, ny, nx), compression=compression)],
        max_threads=2,
        s3=staged_settings(s3_server, staging),
    )
    frames = np.random.default_rng(11).integers(0, 1000, size=(T * C, ny, nx)).astype(dtype)
    stream = ZarrStream(settings)
    assert isinstance(stream.store, StagedS3Store)
    with stream:
        stream.append(frames[:10])
        for frame in frames[10:]:
            stream.append(frame)
    stats = stream.store.upload_stats()
    assert stats.state is UploadState.COMPLETE
    assert stats.pending_objects == 0
    assert stats.failed_attempts == 0
    assert list(staging.iterdir()) == []
    keys = download(s3_server, bucket, f"runs/{case}.zarr", tmp_path / "copy.zarr")
    assert stats.uploaded_objects >= len(keys)  # metadata is rewritten while running; not every version is sent
    assert not [k for k in keys if k.endswith((".partial", ".tmp", ".data", ".meta"))]
    assert s3_server.uploads(bucket) == []
    array: Any = zarr.open_array(tmp_path / "copy.zarr" / "0", mode="r")
    assert array.shape == (T, C, ny, nx)
    np.testing.assert_array_equal(array[:], frames.reshape(T, C, ny, nx))
    if case == "v3-sharded-multipart-raw":
        heads = [s3_server.client().head_object(Bucket=bucket, Key=f"runs/{case}.zarr/{k}") for k in keys]
        assert any(h["ETag"].strip('"').endswith("-2") for h in heads)  # "<md5 of part md5s>-<parts>"
