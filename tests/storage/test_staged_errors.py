"""Errors of a staged store: a permanent S3 error (no bucket, access denied) stops the uploads and is raised by
the next write and by close, never silently, with every object kept journaled; local disk errors are
StorageErrors naming the path; a staging folder is used by one store at a time."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from daemon.errors import StorageError, StreamClosedError
from daemon.storage.s3_settings import S3Settings
from daemon.storage.staged_store import StagedS3Store, resume_uploads
from daemon.storage.upload_queue import UploadState
from tests.fixtures.s3 import SeaweedServer
from tests.storage.staged_support import RETRY_MAX_S, files_under, open_staged, remote_objects, staged_settings

pytestmark = pytest.mark.s3


@pytest.mark.parametrize("fault", ["no-bucket", "wrong-secret"])
def test_a_permanent_s3_error_is_sticky_and_keeps_the_objects_journaled(
    s3_server: SeaweedServer,
    s3_settings: S3Settings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    fault: str,
) -> None:
    staging = tmp_path / "staging"
    settings = staged_settings(s3_server, staging)
    bucket = f"acqd-missing-{uuid.uuid4().hex[:8]}" if fault == "no-bucket" else s3_server.make_bucket()
    if fault == "wrong-secret":
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
    store = StagedS3Store.from_url(f"s3://{bucket}/runs/a.zarr", settings, retry_max_s=RETRY_MAX_S)
    sink = store.open_sink("0/c/0")
    store.put("zarr.json", b"{}")
    assert not store.wait_for_uploads(10)  # the uploads failed for good: no endless retry
    stats = store.upload_stats()
    assert (stats.state, stats.failed_attempts, stats.pending_objects) == (UploadState.FAILED, 1, 1)
    reason = "bucket does not exist" if fault == "no-bucket" else "access denied"
    with pytest.raises(StorageError, match=reason):
        sink.write(0, [b"chunk"])
    with pytest.raises(StreamClosedError):  # the sink was aborted
        sink.finalize()
    with pytest.raises(StorageError, match=reason):
        store.put("zarr.json", b"{}")
    with pytest.raises(StorageError, match=reason):
        store.open_sink("0/c/1")
    with pytest.raises(StorageError, match=f"uploads to s3://{bucket}/runs/a.zarr failed"):
        store.close()
    store.close()  # idempotent: reported once
    assert [name.rsplit(".", 2)[-1] for name in files_under(store.staging_folder / "pending")] == ["meta"]

    if fault == "no-bucket":  # once the cause is fixed, a resume uploads what was kept
        s3_server.make_bucket(bucket)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3_server.secret_key)
    assert resume_uploads(staging, settings)[store.url].state is UploadState.COMPLETE
    assert remote_objects(s3_server, store) == {"zarr.json": b"{}"}


def test_a_staging_dir_that_cannot_be_created_is_a_storage_error(
    s3_server: SeaweedServer, s3_settings: S3Settings, tmp_path: Path
) -> None:
    blocker = tmp_path / "file"
    blocker.write_bytes(b"")
    with pytest.raises(StorageError, match=str(blocker)):
        open_staged(s3_server, blocker / "staging")


def test_a_local_write_error_is_a_storage_error_naming_the_path(
    s3_server: SeaweedServer, s3_settings: S3Settings, tmp_path: Path
) -> None:
    store = open_staged(s3_server, tmp_path / "staging")
    (store.staging_folder / "pending" / "a").write_bytes(b"a file where a folder should be")
    with pytest.raises(StorageError, match="pending/a/"):
        store.open_sink("a/c/0")
    with pytest.raises(StorageError, match="pending/a/"):
        store.put("a/zarr.json", b"{}")
    store.put("b/zarr.json", b"{}")  # the store itself is fine
    store.close()
    assert remote_objects(s3_server, store) == {"b/zarr.json": b"{}"}


def test_a_staging_folder_is_used_by_one_store_at_a_time(
    s3_server: SeaweedServer, s3_settings: S3Settings, tmp_path: Path
) -> None:
    staging = tmp_path / "staging"
    first = open_staged(s3_server, staging)
    settings = staged_settings(s3_server, staging)
    with pytest.raises(StorageError, match="in use"):
        StagedS3Store(first.location, settings)
    with pytest.raises(StorageError, match=r"1 staged stores could not be resumed.*in use"):
        resume_uploads(staging, settings)
    first.close()
    assert resume_uploads(staging, settings) == {}


def test_writing_after_close_raises_stream_closed(
    s3_server: SeaweedServer, s3_settings: S3Settings, tmp_path: Path
) -> None:
    store = open_staged(s3_server, tmp_path / "staging")
    sink = store.open_sink("k")
    store.close()
    with pytest.raises(StreamClosedError):
        store.put("k", b"x")
    with pytest.raises(StreamClosedError):
        store.open_sink("k")
    with pytest.raises(StreamClosedError):
        sink.write(0, [b"x"])
