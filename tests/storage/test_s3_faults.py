"""Network and server faults during an upload: retried when they can be, else a bounded StorageError that leaves
no partial object and no incomplete upload behind."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator

import pytest
from structlog.testing import capture_logs

from daemon.errors import StorageError, StreamClosedError
from daemon.storage.s3_settings import MIN_PART_SIZE, S3Settings
from daemon.storage.s3_store import S3Store
from daemon.storage.sink import SinkState
from tests.fixtures.s3 import SeaweedServer
from tests.fixtures.tcp_proxy import TcpProxy

pytestmark = pytest.mark.s3

PART = MIN_PART_SIZE


@pytest.fixture
def proxy(s3_server: SeaweedServer) -> Iterator[TcpProxy]:
    with TcpProxy("127.0.0.1", int(s3_server.endpoint.rsplit(":", 1)[1])) as p:
        yield p


def test_a_connection_reset_mid_part_is_retried(
    s3_server: SeaweedServer, s3_settings: S3Settings, proxy: TcpProxy
) -> None:
    bucket = s3_server.make_bucket()
    settings = s3_server.settings(endpoint=proxy.endpoint, max_attempts=3)
    store = S3Store.from_url(f"s3://{bucket}/a.zarr", settings)
    data = os.urandom(2 * PART + 4321)
    sink = store.open_sink("shard")
    proxy.reset_after(PART // 2)  # the link drops half-way through the first part
    sink.write(0, [data])
    sink.finalize()
    assert proxy.resets == 1
    assert store.get("shard") == data
    assert s3_server.uploads(bucket) == []
    store.close()


@pytest.mark.slow
def test_a_black_holed_server_fails_in_bounded_time(
    s3_server: SeaweedServer, s3_settings: S3Settings, proxy: TcpProxy
) -> None:
    bucket = s3_server.make_bucket()
    settings = s3_server.settings(endpoint=proxy.endpoint, max_attempts=2, connect_timeout_s=1.0, read_timeout_s=1.0)
    store = S3Store.from_url(f"s3://{bucket}/a.zarr", settings)
    sink = store.open_sink("shard")
    sink.write(0, [bytes(PART + 1)])  # the multipart upload is under way
    proxy.black_hole()
    started = time.monotonic()
    with capture_logs() as logs, pytest.raises(StorageError, match=f"upload_part of s3://{bucket}/a.zarr/shard"):
        sink.write(PART + 1, [bytes(PART)])
    elapsed = time.monotonic() - started
    assert elapsed < 15, f"took {elapsed:.1f} s"
    assert sink.state is SinkState.ABORTED
    assert [e["event"] for e in logs] == ["s3_abort_failed"]  # the abort could not get through either
    proxy.pass_through()
    sink.abort()  # tries the abort again, now that the server answers
    assert s3_server.uploads(bucket) == []
    assert s3_server.object_size(bucket, "a.zarr/shard") is None
    store.close()


@pytest.mark.slow
def test_a_server_killed_mid_upload_leaves_no_object_and_no_upload(
    seaweed_factory: Callable[[], SeaweedServer], s3_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    server = seaweed_factory()  # a private server: the shared one must survive
    for name, value in server.env.items():
        monkeypatch.setenv(name, value)
    bucket = server.make_bucket()
    store = S3Store.from_url(f"s3://{bucket}/a.zarr", server.settings(max_attempts=2, connect_timeout_s=1.0))
    sink = store.open_sink("shard")
    sink.write(0, [bytes(PART + 1)])
    assert sink.parts_uploaded == 1
    server.kill()
    with capture_logs() as logs, pytest.raises(StorageError, match="cannot reach the endpoint"):
        sink.write(PART + 1, [bytes(PART)])
    assert [e["event"] for e in logs] == ["s3_abort_failed"]
    with pytest.raises(StreamClosedError):
        sink.finalize()
    server.start()  # same data, same ports
    assert server.object_size(bucket, "a.zarr/shard") is None
    assert server.uploads(bucket) == ["a.zarr/shard"]  # the abort could not reach a dead server...
    sink.abort()  # ...so abort() tries again
    assert server.uploads(bucket) == []
    assert server.object_size(bucket, "a.zarr/shard") is None
    store.close()
