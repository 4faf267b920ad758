"""An S3 outage during a run costs no frame: a staged store keeps writing (and acknowledging) locally while the
endpoint is black-holed, and uploads everything once it answers again."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from daemon.storage.s3_settings import S3Settings
from daemon.storage.staged_store import StagedS3Store
from daemon.storage.upload_queue import UploadState
from tests.fixtures.s3 import SeaweedServer
from tests.fixtures.tcp_proxy import TcpProxy
from tests.storage.staged_support import (
    PREFIX,
    assert_reads_back,
    files_under,
    frames,
    open_stream,
    proxied_settings,
    wait_until,
)
from tests.storage.test_s3_zarr_roundtrip import C

pytestmark = pytest.mark.s3


@pytest.fixture
def proxy(s3_server: SeaweedServer) -> Iterator[TcpProxy]:
    with TcpProxy("127.0.0.1", int(s3_server.endpoint.rsplit(":", 1)[1])) as p:
        yield p


@pytest.mark.slow
def test_a_black_holed_endpoint_never_blocks_the_stream_and_loses_no_frame(
    s3_server: SeaweedServer, s3_settings: S3Settings, proxy: TcpProxy, tmp_path: Path
) -> None:
    stream, bucket = open_stream(s3_server, proxied_settings(s3_server, proxy, tmp_path / "staging"))
    store = stream.store
    assert isinstance(store, StagedS3Store)
    data = frames()
    proxy.black_hole()
    started = time.monotonic()
    for frame in data:
        stream.append(frame)
    appended_s = time.monotonic() - started
    # every complete shard row is acknowledged (stored and claimed by the metadata) while S3 does not answer
    wait_until(lambda: stream.frames_stored() == 32 * C, timeout_s=5)
    assert appended_s < 3, f"appending took {appended_s:.1f} s: the stream waited for S3"
    stats = store.upload_stats()
    assert stats.state is UploadState.ACTIVE
    assert stats.pending_objects > 0
    wait_until(lambda: store.upload_stats().failed_attempts > 0, timeout_s=5)
    assert s3_server.object_size(bucket, f"{PREFIX}/0/c/0/0/0/0") is None

    proxy.pass_through()
    stream.close()
    stats = store.upload_stats()
    assert (stats.state, stats.pending_objects) == (UploadState.COMPLETE, 0)
    assert stats.failed_attempts > 0
    assert files_under(tmp_path / "staging") == []
    assert_reads_back(s3_server, bucket, tmp_path / "copy.zarr", data)
