"""The S3 store: put/get, emptiness and clearing under its prefix only, leftover uploads, close."""

from __future__ import annotations

import pytest

from daemon.storage import s3_store
from daemon.storage.s3_settings import MIN_PART_SIZE, S3Settings
from daemon.storage.s3_store import S3Store
from tests.fixtures.s3 import SeaweedServer

pytestmark = pytest.mark.s3


@pytest.fixture
def bucket(s3_server: SeaweedServer) -> str:
    return s3_server.make_bucket()


def test_put_then_get(bucket: str, s3_settings: S3Settings) -> None:
    store = S3Store.from_url(f"s3://{bucket}/runs/a.zarr", s3_settings)
    assert store.url == f"s3://{bucket}/runs/a.zarr"
    assert store.get("zarr.json") is None
    store.put("zarr.json", b'{"zarr_format": 3}')
    store.put("zarr.json", memoryview(b'{"zarr_format": 3, "node_type": "group"}'))  # replaces
    assert store.get("zarr.json") == b'{"zarr_format": 3, "node_type": "group"}'
    keys = [o["Key"] for o in store.client.list_objects_v2(Bucket=bucket)["Contents"]]
    assert keys == ["runs/a.zarr/zarr.json"]
    store.close()


def test_is_empty_and_clear_see_only_the_prefix(
    bucket: str, s3_settings: S3Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(s3_store, "DELETE_BATCH", 3)  # several list+delete rounds with few objects
    store = S3Store.from_url(f"s3://{bucket}/runs/a.zarr", s3_settings)
    neighbour = S3Store.from_url(f"s3://{bucket}/runs/a.zarr2", s3_settings)
    neighbour.put("keep", b"mine")
    assert store.is_empty()
    for i in range(8):
        store.put(f"c/{i}", b"x")
    assert not store.is_empty()
    store.clear()
    assert store.is_empty()
    assert neighbour.get("keep") == b"mine"
    store.close()
    neighbour.close()


def test_clear_aborts_uploads_left_by_a_crashed_run(bucket: str, s3_settings: S3Settings) -> None:
    store = S3Store.from_url(f"s3://{bucket}/a.zarr", s3_settings)
    crashed = store.open_sink("0/c/0")
    crashed.write(0, [bytes(MIN_PART_SIZE + 1)])  # a multipart upload that will never complete
    outside = store.client.create_multipart_upload(Bucket=bucket, Key="a.zarr2/k")["UploadId"]
    store.clear()
    left = store.client.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
    assert [(u["Key"], u["UploadId"]) for u in left] == [("a.zarr2/k", outside)]
    store.close()


def test_close_is_idempotent(bucket: str, s3_settings: S3Settings) -> None:
    store = S3Store.from_url(f"s3://{bucket}/a.zarr", s3_settings)
    store.close()
    store.close()
