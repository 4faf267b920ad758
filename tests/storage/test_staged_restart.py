"""Uploads survive a restart: what a staged store could not upload (closed during an outage, or its process
killed) stays journaled in the staging folder, and ``resume_uploads`` uploads and verifies it later."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import zarr

from daemon.storage.s3_settings import S3Settings
from daemon.storage.staged_store import StagedS3Store, resume_uploads
from daemon.storage.upload_queue import UploadState
from tests.fixtures.s3 import SeaweedServer, download
from tests.fixtures.tcp_proxy import TcpProxy
from tests.storage import writer_process
from tests.storage.killed_writer import kill_when_stored
from tests.storage.staged_support import (
    PREFIX,
    assert_reads_back,
    files_under,
    frames,
    open_stream,
    proxied_settings,
)

pytestmark = pytest.mark.s3

REPO = Path(__file__).resolve().parents[2]

# Streams writer_process.frame(k) for k = 0, 1, ... to a staged store until killed; prints "stored N" as it goes.
WRITER = """
import sys
from daemon.log import configure
from daemon.storage import ArraySettings, CompressionSettings, Dimension, StreamSettings, ZarrStream
from daemon.storage.s3_settings import MIN_PART_SIZE, S3Settings
from tests.storage.writer_process import HEIGHT, WIDTH, frame

configure("json", stream=sys.stderr)
url, endpoint, staging = sys.argv[1:4]
s3 = S3Settings(endpoint=endpoint, region="us-east-1", part_size=MIN_PART_SIZE, max_attempts=1,
                connect_timeout_s=1.0, read_timeout_s=1.0, staging_dir=staging)
dims = [Dimension("t", "time", 0, 4, 2), Dimension("y", "space", HEIGHT, 32, 2), Dimension("x", "space", WIDTH, 24, 2)]
array = ArraySettings(data_type="uint16", dimensions=dims, compression=CompressionSettings("zstd", 1))
stream = ZarrStream(StreamSettings(store_path=url, arrays=[array], s3=s3))
print("open", flush=True)
sys.stdin.readline()
k = 0
while True:
    stream.append(frame(k))
    k += 1
    if k % 8 == 0:
        print("stored", stream.frames_stored(), flush=True)
"""


@pytest.fixture
def proxy(s3_server: SeaweedServer) -> Iterator[TcpProxy]:
    with TcpProxy("127.0.0.1", int(s3_server.endpoint.rsplit(":", 1)[1])) as p:
        yield p


@pytest.mark.slow
def test_resume_uploads_what_a_close_during_an_outage_left(
    s3_server: SeaweedServer, s3_settings: S3Settings, proxy: TcpProxy, tmp_path: Path
) -> None:
    staging = tmp_path / "staging"
    settings = proxied_settings(s3_server, proxy, staging, upload_wait_s=0.5)
    stream, bucket = open_stream(s3_server, settings)
    store = stream.store
    assert isinstance(store, StagedS3Store)
    proxy.black_hole()
    data = frames()
    stream.append(data)
    started = time.monotonic()
    stream.close()  # not an error: nothing is lost, the uploads are pending
    closed_s = time.monotonic() - started
    assert closed_s < 5, f"close took {closed_s:.1f} s"  # upload_wait_s, plus one request's timeout
    stats = store.upload_stats()
    assert stats.state is UploadState.PENDING_UPLOADS
    assert stats.pending_objects > 0
    pending = files_under(store.staging_folder / "pending")
    assert len(pending) == stats.pending_objects
    assert all(name.endswith((".data", ".meta")) for name in pending)
    assert s3_server.object_size(bucket, f"{PREFIX}/0/c/0/0/0/0") is None

    proxy.pass_through()
    results = resume_uploads(staging, settings, wait_s=20)
    resumed = results[store.url]
    assert (resumed.state, resumed.pending_objects) == (UploadState.COMPLETE, 0)
    assert resumed.uploaded_objects == stats.pending_objects
    assert resumed.uploaded_bytes == stats.pending_bytes
    assert files_under(staging) == []
    assert_reads_back(s3_server, bucket, tmp_path / "copy.zarr", data)
    assert resume_uploads(staging, settings) == {}  # idempotent: nothing left to do


@pytest.mark.slow
def test_resume_after_the_writer_was_killed_uploads_every_acknowledged_frame(
    s3_server: SeaweedServer, s3_env: dict[str, str], proxy: TcpProxy, tmp_path: Path
) -> None:
    staging = tmp_path / "staging"
    bucket = s3_server.make_bucket()
    url = f"s3://{bucket}/{PREFIX}"
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, url, proxy.endpoint, str(staging)],
        cwd=REPO,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    acknowledged = run_until_killed(proc, proxy, min_stored=40)
    assert files_under(staging)  # the journal of a dead process

    proxy.pass_through()
    results = resume_uploads(staging, proxied_settings(s3_server, proxy, staging), wait_s=20)
    assert results[url].state is UploadState.COMPLETE
    assert files_under(staging) == []
    copy = tmp_path / "copy.zarr"
    download(s3_server, bucket, PREFIX, copy)
    array: Any = zarr.open_array(copy / "0", mode="r")
    assert array.shape[0] >= acknowledged > 0  # every frame acknowledged before the kill is claimed, and in S3
    for k in range(array.shape[0]):
        np.testing.assert_array_equal(array[k], writer_process.frame(k), err_msg=f"frame {k}")


def run_until_killed(proc: subprocess.Popen[str], proxy: TcpProxy, min_stored: int, timeout_s: float = 30) -> int:
    """Let the writer open its stream, black-hole S3, let it store ``min_stored`` frames, SIGKILL it."""
    assert proc.stdin is not None
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout_s
    try:
        assert proc.stdout.readline().strip() == "open"
        proxy.black_hole()
        proc.stdin.write("go\n")
        proc.stdin.flush()
    except BaseException:
        proc.kill()
        proc.communicate(timeout=10)
        raise
    return kill_when_stored(proc, min_stored, deadline)
