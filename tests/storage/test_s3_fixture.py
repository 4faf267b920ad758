"""The SeaweedFS fixture is a fair stand-in for S3: it checks signatures and refuses unknown buckets."""

from __future__ import annotations

from pathlib import Path

import pytest
from botocore.exceptions import ClientError, ReadTimeoutError
from botocore.response import StreamingBody
from pytest_mock import MockerFixture

from tests.fixtures.s3 import SeaweedServer, download

pytestmark = pytest.mark.s3


def test_a_wrong_secret_is_refused(s3_server: SeaweedServer) -> None:
    bucket = s3_server.make_bucket()
    forged = s3_server.client(secret_key="not-" + s3_server.secret_key, max_attempts=1)
    with pytest.raises(ClientError) as info:
        forged.put_object(Bucket=bucket, Key="k", Body=b"x")
    assert info.value.response["Error"]["Code"] == "SignatureDoesNotMatch"


def test_an_unknown_access_key_is_refused(s3_server: SeaweedServer) -> None:
    bucket = s3_server.make_bucket()
    stranger = s3_server.client(access_key="AKNOBODY", max_attempts=1)
    with pytest.raises(ClientError) as info:
        stranger.list_objects_v2(Bucket=bucket)
    assert info.value.response["Error"]["Code"] == "InvalidAccessKeyId"


def test_a_put_to_a_missing_bucket_does_not_create_it(s3_server: SeaweedServer) -> None:
    client = s3_server.client(max_attempts=1)
    with pytest.raises(ClientError):
        client.put_object(Bucket="acqd-never-created", Key="k", Body=b"x")
    names = [b["Name"] for b in client.list_buckets()["Buckets"]]
    assert "acqd-never-created" not in names


def test_the_server_listens_on_loopback_only(s3_server: SeaweedServer) -> None:
    assert s3_server.endpoint.startswith("http://127.0.0.1:")
    assert all(f"-{name}=" in " ".join(s3_server.command()) for name in s3_server.ports)
    assert "-ip.bind=127.0.0.1" in s3_server.command()


def test_download_retries_a_stalled_body_read(s3_server: SeaweedServer, tmp_path: Path, mocker: MockerFixture) -> None:
    """The soak's checks download stores: one read that stalls costs a retry, not the test's time budget."""
    bucket = s3_server.make_bucket()
    s3_server.client().put_object(Bucket=bucket, Key="run/a/b", Body=b"payload")
    real_read = StreamingBody.read
    stalls = []

    def read(body: StreamingBody, amt: int | None = None) -> bytes:
        if not stalls:
            stalls.append(body)
            raise ReadTimeoutError(endpoint_url=s3_server.endpoint)
        return real_read(body, amt)

    mocker.patch.object(StreamingBody, "read", autospec=True, side_effect=read)
    assert download(s3_server, bucket, "run", tmp_path) == ["a/b"]
    assert (tmp_path / "a" / "b").read_bytes() == b"payload"
    assert len(stalls) == 1
