"""Upload order: metadata reaches S3 only after every object finalized before it; a newer version of a key is
never overtaken by an older one; an older version still waiting is dropped (superseded), never uploaded.

The real uploader is wrapped (pytest-mock) only to record when each upload starts and ends, and to hold uploads
back on demand; every upload still goes to the real server."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from pytest_mock import MockerFixture

from daemon.storage.s3_settings import S3Settings
from daemon.storage.staged_store import StagedS3Store
from daemon.storage.upload_queue import UploadState
from tests.fixtures.s3 import SeaweedServer
from tests.storage.staged_support import Recorder, open_staged, remote_objects

pytestmark = pytest.mark.s3


def test_metadata_is_uploaded_after_every_object_finalized_before_it(
    s3_server: SeaweedServer, s3_settings: S3Settings, tmp_path: Path, mocker: MockerFixture
) -> None:
    recorder = Recorder(mocker, delay_s=0.05)
    store = open_staged(s3_server, tmp_path / "staging", upload_threads=4)
    for i in range(24):
        write_object(store, f"0/c/{i}", b"chunk %d" % i)
        if i % 4 == 3:
            store.put("0/zarr.json", b'{"claims": %d}' % (i + 1))
    store.close()
    ended: set[int] = set()
    data_seqs: set[int] = set()
    for event, seq, kind, _ in recorder.events:
        if event == "end":
            ended.add(seq)
        elif kind == "data":
            data_seqs.add(seq)
        else:
            before = {s for s in data_seqs if s < seq}
            assert before <= ended, f"metadata {seq} started before data {sorted(before - ended)} was uploaded"
    assert len(data_seqs) == 24
    assert remote_objects(s3_server, store)["0/zarr.json"] == b'{"claims": 24}'
    assert store.upload_stats().state is UploadState.COMPLETE


def test_an_older_version_waiting_for_upload_is_dropped(
    s3_server: SeaweedServer, s3_settings: S3Settings, tmp_path: Path, mocker: MockerFixture
) -> None:
    recorder = Recorder(mocker)
    recorder.gate.clear()  # the one upload thread is held on the first object
    store = open_staged(s3_server, tmp_path / "staging", upload_threads=1)
    store.put("first", b"held")
    for version in range(10):
        store.put("zarr.json", b"version %d" % version)
    assert store.get("zarr.json") == b"version 9"  # the newest local version, before any upload
    recorder.gate.set()
    store.close()
    assert [key for _, key in recorder.started()] == ["first", "zarr.json"]
    assert remote_objects(s3_server, store) == {"first": b"held", "zarr.json": b"version 9"}
    stats = store.upload_stats()
    assert (stats.uploaded_objects, stats.superseded_objects, stats.pending_objects) == (2, 9, 0)


def test_a_newer_version_waits_for_the_older_one_under_way(
    s3_server: SeaweedServer, s3_settings: S3Settings, tmp_path: Path, mocker: MockerFixture
) -> None:
    recorder = Recorder(mocker)
    recorder.gate.clear()
    store = open_staged(s3_server, tmp_path / "staging", upload_threads=2)
    write_object(store, "c/0", b"old")
    deadline = time.monotonic() + 5
    while not recorder.started():  # the old version is under way (held at the gate)
        assert time.monotonic() < deadline
        time.sleep(0.01)
    write_object(store, "c/0", b"new")  # data objects may go in parallel, but not two versions of one key
    time.sleep(0.2)  # the second thread is free: it must still not start the new version
    assert len(recorder.started()) == 1
    recorder.gate.set()
    store.close()
    starts_ends = [(event, seq) for event, seq, _, _ in recorder.events]
    assert starts_ends == [("start", 1), ("end", 1), ("start", 2), ("end", 2)]
    assert remote_objects(s3_server, store) == {"c/0": b"new"}


def write_object(store: StagedS3Store, key: str, data: bytes) -> None:
    sink = store.open_sink(key)
    sink.write(0, [data])
    sink.finalize()
