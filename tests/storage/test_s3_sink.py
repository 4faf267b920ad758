"""The S3 sink: one PUT while small, a multipart upload once past a part, bounded memory, sticky failures."""

from __future__ import annotations

import os
import tracemalloc

import pytest
from botocore.exceptions import ClientError

from daemon.errors import StorageError, StreamClosedError
from daemon.storage.s3_names import S3Location
from daemon.storage.s3_settings import MIN_PART_SIZE, S3Settings
from daemon.storage.s3_sink import S3Sink
from daemon.storage.s3_store import S3Store
from daemon.storage.sink import SinkState
from tests.fixtures.s3 import SeaweedServer

pytestmark = pytest.mark.s3

PART = MIN_PART_SIZE


@pytest.fixture
def store(s3_server: SeaweedServer, s3_settings: S3Settings):
    s = S3Store(S3Location(s3_server.make_bucket(), "run/a.zarr"), s3_settings)
    yield s
    s.close()


def head(store: S3Store, key: str) -> int | None:
    """Size of the object at store key ``key``, or None when it is not visible (asked with the store's client)."""
    try:
        reply = store.client.head_object(Bucket=store.location.bucket, Key=store.location.object_key(key))
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") not in ("404", "NoSuchKey"):
            raise
        return None
    return reply["ContentLength"]


def uploads(store: S3Store) -> list[str]:
    reply = store.client.list_multipart_uploads(Bucket=store.location.bucket, Prefix=store.location.folder)
    return [u["Key"] for u in reply.get("Uploads", [])]


def test_a_small_object_is_one_put_at_finalize(store: S3Store) -> None:
    sink = store.open_sink("c/0/0")
    sink.write(0, [b"hello ", bytearray(b"small "), memoryview(b"world")])
    assert head(store, "c/0/0") is None  # nothing visible before finalize
    assert uploads(store) == []  # and no multipart upload started
    sink.finalize()
    assert store.get("c/0/0") == b"hello small world"
    assert sink.parts_uploaded == 0
    assert sink.state is SinkState.FINALIZED


def test_an_object_of_exactly_one_part_is_one_put(store: S3Store) -> None:
    data = os.urandom(PART)
    sink = store.open_sink("one")
    sink.write(0, [data])
    sink.finalize()
    assert sink.parts_uploaded == 0
    assert store.get("one") == data


def test_a_large_object_becomes_a_multipart_upload_while_being_built(store: S3Store) -> None:
    data = os.urandom(2 * PART + 12345)
    sink = store.open_sink("shard")
    sink.write(0, [data[: PART + 1]])  # one byte past a part: the first part goes out
    assert sink.parts_uploaded == 1
    sink.write(PART + 1, [data[PART + 1 :]])
    assert sink.parts_uploaded == 2
    assert uploads(store) == [store.location.object_key("shard")]
    assert head(store, "shard") is None  # parts are not an object yet
    bucket, object_key = store.location.bucket, store.location.object_key("shard")
    upload_id = store.client.list_multipart_uploads(Bucket=bucket, Prefix=object_key)["Uploads"][0]["UploadId"]
    sizes = [p["Size"] for p in store.client.list_parts(Bucket=bucket, Key=object_key, UploadId=upload_id)["Parts"]]
    assert sizes == [PART, PART]
    sink.finalize()
    assert store.get("shard") == data
    assert uploads(store) == []


def test_memory_stays_bounded_to_about_one_part(store: S3Store) -> None:
    piece = os.urandom(256 * 1024)
    n_pieces = (4 * PART) // len(piece) + 3
    sink = store.open_sink("big")
    tracemalloc.start()
    try:
        for i in range(n_pieces):
            sink.write(i * len(piece), [piece])
            assert sink.buffered_bytes <= PART
        sink.finalize()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert sink.parts_uploaded == 5
    assert head(store, "big") == n_pieces * len(piece)
    assert peak < 1.6 * PART, f"peak {peak / PART:.2f} parts"


def test_a_gap_reads_back_as_zeros(store: S3Store) -> None:
    sink = store.open_sink("gappy")
    sink.write(0, [b"abcdef"])
    sink.write(10, [b"end"])
    sink.finalize()
    assert store.get("gappy") == b"abcdef" + bytes(4) + b"end"


def test_a_gap_spanning_parts_is_uploaded_as_zeros(store: S3Store) -> None:
    sink = store.open_sink("far")
    sink.write(0, [b"head"])
    sink.write(2 * PART + 10, [b"tail"])
    assert sink.parts_uploaded == 2
    assert sink.buffered_bytes <= PART
    sink.finalize()
    data = store.get("far")
    assert data is not None
    assert len(data) == 2 * PART + 14
    assert data[:4] == b"head"
    assert data[-4:] == b"tail"
    assert data[4:-4].count(0) == len(data) - 8


@pytest.mark.parametrize("behind", [PART - 1, PART + 99])  # in an uploaded part / in the part being built
def test_a_write_behind_what_was_written_is_refused(store: S3Store, behind: int) -> None:
    sink = store.open_sink("k")
    sink.write(0, [bytes(PART + 100)])
    with pytest.raises(StorageError, match=f"behind the {PART + 100} bytes already written"):
        sink.write(behind, [b"x"])
    sink.write(PART + 100, [b"ok"])  # a refused write does not break the sink
    sink.finalize()
    assert head(store, "k") == PART + 102


def test_finalize_is_idempotent(store: S3Store) -> None:
    sink = store.open_sink("k")
    sink.write(0, [b"once"])
    sink.finalize()
    store.put("k", b"changed")  # a second finalize must not upload again
    sink.finalize()
    assert store.get("k") == b"changed"
    sink.abort()  # a no-op after finalize
    assert sink.state is SinkState.FINALIZED
    assert store.get("k") == b"changed"


def test_abort_discards_a_multipart_upload_and_is_idempotent(store: S3Store) -> None:
    sink = store.open_sink("k")
    sink.write(0, [bytes(PART + 1)])
    assert len(uploads(store)) == 1
    sink.abort()
    sink.abort()
    assert sink.state is SinkState.ABORTED
    assert uploads(store) == []
    assert head(store, "k") is None


def test_writes_and_finalize_after_abort_or_finalize_are_refused(store: S3Store) -> None:
    aborted, finalized = store.open_sink("a"), store.open_sink("f")
    aborted.abort()
    finalized.finalize()
    for sink in (aborted, finalized):
        with pytest.raises(StreamClosedError):
            sink.write(0, [b"late"])
    with pytest.raises(StreamClosedError):
        aborted.finalize()
    assert head(store, "a") is None
    assert head(store, "f") == 0  # an empty object is still an object


def test_a_failed_upload_is_aborted_and_the_error_is_sticky(s3_server: SeaweedServer, s3_settings: S3Settings) -> None:
    bucket = s3_server.make_bucket()
    sink = S3Sink(s3_server.client(), bucket, "run/a.zarr/k", "k", PART)
    sink.write(0, [bytes(PART + 1)])
    s3_server.client().delete_bucket(Bucket=bucket)  # the next part has nowhere to go
    with pytest.raises(StorageError, match=f"s3://{bucket}/run/a.zarr/k") as info:
        sink.write(PART + 1, [bytes(PART)])
    assert not isinstance(info.value, StreamClosedError)
    assert sink.state is SinkState.ABORTED
    with pytest.raises(StreamClosedError, match="failed earlier") as again:
        sink.write(2 * PART + 1, [b"x"])
    assert again.value.__cause__ is info.value
    with pytest.raises(StreamClosedError):
        sink.finalize()
