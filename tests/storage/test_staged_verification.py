"""Every upload is verified: a body damaged on its way is refused by the server (Content-MD5 -> BadDigest), an
object that does not match after the upload (size, ETag) fails the check; either way the upload is retried and
S3 ends up with the exact bytes. The faults are injected (pytest-mock) into the real client's calls."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from pytest_mock import MockerFixture
from structlog.testing import capture_logs

from daemon.storage.s3_settings import S3Settings
from daemon.storage.staged_store import StagedS3Store
from tests.fixtures.s3 import SeaweedServer
from tests.storage.staged_support import open_staged, remote_objects

pytestmark = pytest.mark.s3


def damage_first_call(mocker: MockerFixture, client: Any, method: str, damage: Any) -> list[int]:
    """Let ``damage(kwargs)`` change the first call of ``client.method``; returns the call count (a list of one)."""
    real = getattr(client, method)
    calls = [0]

    def wrapper(**kwargs: Any) -> Any:
        calls[0] += 1
        if calls[0] == 1:
            damage(kwargs)
        return real(**kwargs)

    mocker.patch.object(client, method, side_effect=wrapper)
    return calls


def flip_a_byte(kwargs: dict[str, Any]) -> None:
    body = bytearray(kwargs["Body"])
    body[len(body) // 2] ^= 0xFF
    kwargs["Body"] = bytes(body)


def upload_and_check(store: StagedS3Store, server: SeaweedServer, key: str, data: bytes) -> list[dict[str, Any]]:
    with capture_logs() as logs:
        sink = store.open_sink(key)
        sink.write(0, [data])
        sink.finalize()
        store.close()
    assert remote_objects(server, store) == {key: data}
    assert server.uploads(store.location.bucket) == []
    stats = store.upload_stats()
    assert (stats.uploaded_objects, stats.failed_attempts, stats.pending_objects) == (1, 1, 0)
    return [e for e in logs if e["event"] == "staged_upload_retry"]


def test_a_body_damaged_in_flight_is_refused_and_sent_again(
    s3_server: SeaweedServer, s3_settings: S3Settings, tmp_path: Path, mocker: MockerFixture
) -> None:
    store = open_staged(s3_server, tmp_path / "staging", upload_threads=1)
    calls = damage_first_call(mocker, store.upload_client, "put_object", flip_a_byte)
    retries = upload_and_check(store, s3_server, "0/c/0", os.urandom(100_000))
    assert calls == [2]
    assert [e["attempt"] for e in retries] == [1]
    assert "BadDigest" in retries[0]["error"]


def test_a_damaged_part_fails_the_multipart_upload_which_is_sent_again(
    s3_server: SeaweedServer, s3_settings: S3Settings, tmp_path: Path, mocker: MockerFixture
) -> None:
    store = open_staged(s3_server, tmp_path / "staging", upload_threads=1)
    calls = damage_first_call(mocker, store.upload_client, "upload_part", flip_a_byte)
    data = os.urandom(s3_settings.part_size + 1000)
    retries = upload_and_check(store, s3_server, "0/c/0", data)
    assert calls == [3]  # the damaged first part (the upload is then aborted), then both parts again
    assert "upload_part" in retries[0]["error"]
    assert "BadDigest" in retries[0]["error"]


@pytest.mark.parametrize(("field", "wrong"), [("ContentLength", 3), ("ETag", '"0123456789abcdef0123456789abcdef"')])
def test_an_object_that_does_not_check_out_is_sent_again(
    s3_server: SeaweedServer, s3_settings: S3Settings, tmp_path: Path, mocker: MockerFixture, field: str, wrong: Any
) -> None:
    store = open_staged(s3_server, tmp_path / "staging", upload_threads=1)
    real = store.upload_client.head_object
    calls = [0]

    def head(**kwargs: Any) -> Any:
        reply = real(**kwargs)
        calls[0] += 1
        return {**reply, field: wrong} if calls[0] == 1 else reply

    mocker.patch.object(store.upload_client, "head_object", side_effect=head)
    retries = upload_and_check(store, s3_server, "zarr.json", b'{"zarr_format": 3}')
    assert calls == [2]
    assert "verification" in retries[0]["error"]
