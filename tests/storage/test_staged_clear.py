"""``clear`` (an overwrite) drops what is waiting for upload, waits for the upload under way, then empties the S3
prefix: nothing of the old content reaches S3 afterwards, and the store is empty."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from pytest_mock import MockerFixture

from daemon.storage.s3_settings import S3Settings
from tests.fixtures.s3 import SeaweedServer
from tests.storage.staged_support import Recorder, files_under, open_staged, remote_objects, wait_until

pytestmark = pytest.mark.s3


def test_clear_drops_pending_uploads_and_empties_s3(
    s3_server: SeaweedServer, s3_settings: S3Settings, tmp_path: Path, mocker: MockerFixture
) -> None:
    recorder = Recorder(mocker)
    recorder.gate.clear()  # the one upload thread is held on the first object
    store = open_staged(s3_server, tmp_path / "staging", upload_threads=1)
    for i in range(5):
        store.put(f"old/{i}", b"old")
    wait_until(lambda: len(recorder.started()) == 1, timeout_s=5)
    assert not store.is_empty()
    threading.Timer(0.3, recorder.gate.set).start()  # the upload under way ends while clear waits for it
    store.clear()
    assert store.is_empty()
    assert files_under(store.staging_folder / "pending") == []
    assert remote_objects(s3_server, store) == {}
    store.put("new", b"new")
    store.close()
    assert [key for _, key in recorder.started()] == ["old/0", "new"]
    assert remote_objects(s3_server, store) == {"new": b"new"}
