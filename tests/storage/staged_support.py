"""Helpers for the staged S3 store tests: settings with a staging folder, a store on a fresh bucket, a stream
through a fault-injecting proxy, S3 listings and read-back."""

from __future__ import annotations

import random
import re
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import zarr
from pytest_mock import MockerFixture

from daemon.storage import ArraySettings, CompressionSettings, StreamSettings, ZarrStream
from daemon.storage.s3_settings import S3Settings
from daemon.storage.s3_upload import FileUploader, UploadResult
from daemon.storage.staged_store import StagedS3Store
from tests.fixtures.s3 import SeaweedServer, download
from tests.fixtures.tcp_proxy import TcpProxy
from tests.storage.test_s3_zarr_roundtrip import C, T, dims

RETRY_MAX_S = 0.5  # tests wait at most this long between retries
NY, NX = 64, 96
PREFIX = "runs/staged.zarr"


def staged_settings(server: SeaweedServer, staging: Path, **overrides: Any) -> S3Settings:
    values: dict[str, Any] = {"staging_dir": str(staging), "upload_wait_s": 20.0}
    values.update(overrides)
    return server.settings(**values)


def proxied_settings(server: SeaweedServer, proxy: TcpProxy, staging: Path, **overrides: Any) -> S3Settings:
    """Through ``proxy``, one attempt per request and 1 s timeouts, so a black hole shows quickly."""
    values: dict[str, Any] = {"max_attempts": 1, "connect_timeout_s": 1.0, "read_timeout_s": 1.0}
    values.update(overrides)
    return staged_settings(server, staging, endpoint=proxy.endpoint, **values)


def open_staged(server: SeaweedServer, staging: Path, prefix: str = PREFIX, **overrides: Any) -> StagedS3Store:
    """A staged store on a fresh bucket."""
    settings = staged_settings(server, staging, **overrides)
    return StagedS3Store.from_url(f"s3://{server.make_bucket()}/{prefix}", settings, retry_max_s=RETRY_MAX_S)


def open_stream(server: SeaweedServer, settings: S3Settings) -> tuple[ZarrStream, str]:
    """A v3 sharded stream (T x C x NY x NX, uint16) through a staged store on a fresh bucket."""
    bucket = server.make_bucket()
    stream_settings = StreamSettings(
        store_path=f"s3://{bucket}/{PREFIX}",
        arrays=[ArraySettings(data_type="uint16", dimensions=dims(2, NY, NX), compression=CompressionSettings())],
        max_threads=2,
        s3=settings,
    )
    store = StagedS3Store.from_url(stream_settings.store_path, settings, retry_max_s=RETRY_MAX_S)
    return ZarrStream(stream_settings, store=store), bucket


def frames() -> npt.NDArray[np.uint16]:
    return np.random.default_rng(3).integers(0, 4000, size=(T * C, NY, NX)).astype(np.uint16)


def assert_reads_back(server: SeaweedServer, bucket: str, into: Path, data: npt.NDArray[np.uint16]) -> None:
    """zarr reads every value of ``data`` from a copy of the store's objects in S3."""
    assert download(server, bucket, PREFIX, into)
    array: Any = zarr.open_array(into / "0", mode="r")
    assert array.shape == (T, C, NY, NX)
    np.testing.assert_array_equal(array[:], data.reshape(T, C, NY, NX))


def wait_until(condition: Callable[[], bool], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def remote_objects(server: SeaweedServer, store: StagedS3Store) -> dict[str, bytes]:
    """Every object under the store's prefix, by store key."""
    client = server.client()
    location = store.location
    found = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=location.bucket, Prefix=location.folder):
        for item in page.get("Contents", []):
            key = item["Key"][len(location.folder) :]
            found[key] = client.get_object(Bucket=location.bucket, Key=item["Key"])["Body"].read()
    return found


def files_under(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


_NAME = re.compile(r"^(?P<name>.+)\.(?P<seq>\d+)\.(?P<kind>data|meta)$")


class Recorder:
    """Wraps FileUploader.upload: records (event, seq, kind, key) in order; ``gate`` holds uploads while clear."""

    def __init__(self, mocker: MockerFixture, delay_s: float = 0.0) -> None:
        self.events: list[tuple[str, int, str, str]] = []
        self.gate = threading.Event()
        self.gate.set()
        self._lock = threading.Lock()
        self._delay_s = delay_s
        self._real = FileUploader.upload
        mocker.patch.object(FileUploader, "upload", autospec=True, side_effect=self._upload)

    def _upload(self, uploader: FileUploader, path: Path, object_key: str, stop: Any = None) -> UploadResult:
        found = _NAME.match(path.name)
        assert found is not None
        seq, kind, key = int(found["seq"]), found["kind"], object_key.split("/", 2)[2]
        self._record("start", seq, kind, key)
        self.gate.wait(10)
        if kind == "data" and self._delay_s:
            time.sleep(random.uniform(0, self._delay_s))  # data uploads end in any order
        result = self._real(uploader, path, object_key, stop)
        self._record("end", seq, kind, key)
        return result

    def _record(self, event: str, seq: int, kind: str, key: str) -> None:
        with self._lock:
            self.events.append((event, seq, kind, key))

    def started(self) -> list[tuple[int, str]]:
        with self._lock:
            return [(seq, key) for event, seq, _, key in self.events if event == "start"]
