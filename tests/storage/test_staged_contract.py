"""The staged S3 store passes the shared Store/Sink contract on a real S3 server, and ends with every object in S3
and nothing left in its staging folder."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from daemon.storage.s3_settings import S3Settings
from daemon.storage.staged_store import StagedS3Store
from daemon.storage.upload_queue import UploadState
from tests.fixtures.s3 import SeaweedServer
from tests.storage.sink_contract import SinkContract, StoreContract
from tests.storage.staged_support import files_under, open_staged, remote_objects

pytestmark = pytest.mark.s3


class TestStagedStoreContract(StoreContract, SinkContract):
    @pytest.fixture
    def store(self, s3_server: SeaweedServer, s3_settings: S3Settings, tmp_path: Path) -> Iterator[StagedS3Store]:
        store = open_staged(s3_server, tmp_path / "staging")
        yield store
        store.close()


def test_close_uploads_everything_and_empties_the_staging_folder(
    s3_server: SeaweedServer, s3_settings: S3Settings, tmp_path: Path
) -> None:
    staging = tmp_path / "staging"
    store = open_staged(s3_server, staging)
    big = os.urandom(s3_settings.part_size * 2 + 1234)  # a multipart upload of three parts
    sink = store.open_sink("0/c/0/0")
    sink.write(0, [big[:100]])
    sink.write(100, [big[100:]])
    sink.finalize()
    store.put("zarr.json", b'{"zarr_format": 3}')
    store.put("0/zarr.json", b"{}")
    assert files_under(staging) != []
    store.close()
    expected = {"0/c/0/0": big, "zarr.json": b'{"zarr_format": 3}', "0/zarr.json": b"{}"}
    assert remote_objects(s3_server, store) == expected
    assert s3_server.uploads(store.location.bucket) == []
    stats = store.upload_stats()
    assert stats.state is UploadState.COMPLETE
    assert (stats.pending_objects, stats.pending_bytes, stats.uploaded_objects) == (0, 0, 3)
    assert stats.uploaded_bytes == len(big) + 18 + 2
    assert list(staging.iterdir()) == []


def test_get_reads_s3_once_the_local_copy_is_gone(
    s3_server: SeaweedServer, s3_settings: S3Settings, tmp_path: Path
) -> None:
    store = open_staged(s3_server, tmp_path / "staging")
    store.put("k", b"value")
    assert store.wait_for_uploads(10)
    assert files_under(store.staging_folder / "pending") == []
    assert store.get("k") == b"value"
    store.close()


def test_keep_staged_keeps_a_local_copy_of_every_uploaded_object(
    s3_server: SeaweedServer, s3_settings: S3Settings, tmp_path: Path
) -> None:
    store = open_staged(s3_server, tmp_path / "staging", keep_staged=True)
    store.put("a/zarr.json", b"old")
    store.put("a/zarr.json", b"new")
    sink = store.open_sink("a/c/0")
    sink.write(0, [b"chunk"])
    sink.finalize()
    store.close()
    kept = store.staging_folder / "kept"
    assert {k: (kept / k).read_bytes() for k in files_under(kept)} == remote_objects(s3_server, store)
    assert remote_objects(s3_server, store) == {"a/zarr.json": b"new", "a/c/0": b"chunk"}
    assert files_under(store.staging_folder / "pending") == []
