"""preflight fails fast and says why: wrong bucket, bad keys, no credentials, unreachable endpoint."""

from __future__ import annotations

import os
import time

import pytest

from daemon.errors import ConfigError, StorageError
from daemon.storage.s3_settings import S3Settings
from daemon.storage.s3_store import preflight, preflight_clients
from tests.fixtures.s3 import SeaweedServer, free_ports

pytestmark = pytest.mark.s3


def test_preflight_passes_and_leaves_nothing_behind(s3_server: SeaweedServer, s3_settings: S3Settings) -> None:
    bucket = s3_server.make_bucket()
    preflight(f"s3://{bucket}/runs/a.zarr", s3_settings)
    assert s3_server.client().list_objects_v2(Bucket=bucket).get("KeyCount") == 0


def test_repeated_preflights_reuse_their_client_and_a_failure_forgets_it(
    s3_server: SeaweedServer, s3_settings: S3Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    bucket = s3_server.make_bucket()
    preflight(f"s3://{bucket}/a.zarr", s3_settings)
    kept = preflight_clients()
    for _ in range(5):  # a daemon preflights every run: no new client (and its botocore models) each time
        preflight(f"s3://{bucket}/a.zarr", s3_settings)
    assert preflight_clients() == kept
    secret = os.environ["AWS_SECRET_ACCESS_KEY"]
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "WRONGVALUE0123456789")  # other credentials: another client
    with pytest.raises(StorageError, match="access denied"):
        preflight(f"s3://{bucket}/a.zarr", s3_settings)
    assert preflight_clients() == kept  # the failed one is not kept
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret)
    preflight(f"s3://{bucket}/a.zarr", s3_settings)
    assert preflight_clients() == kept


def test_a_missing_bucket_is_named(s3_server: SeaweedServer, s3_settings: S3Settings) -> None:
    with pytest.raises(StorageError, match="bucket 'acqd-no-such-bucket' does not exist"):
        preflight("s3://acqd-no-such-bucket/a.zarr", s3_settings)


@pytest.mark.parametrize("wrong", ["AWS_SECRET_ACCESS_KEY", "AWS_ACCESS_KEY_ID"])
def test_wrong_credentials_are_reported_as_access_denied(
    s3_server: SeaweedServer, s3_settings: S3Settings, monkeypatch: pytest.MonkeyPatch, wrong: str
) -> None:
    bucket = s3_server.make_bucket()
    monkeypatch.setenv(wrong, "WRONGVALUE0123456789")
    with pytest.raises(StorageError, match="access denied") as info:
        preflight(f"s3://{bucket}/a.zarr", s3_settings)
    assert bucket in str(info.value)


def test_missing_credentials_are_reported(s3_settings: S3Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    with pytest.raises(StorageError, match="no S3 credentials found"):
        preflight("s3://any-bucket/a.zarr", s3_settings)


def test_an_unknown_profile_is_a_config_error(s3_settings: S3Settings) -> None:
    settings = S3Settings(endpoint=s3_settings.endpoint, profile="no-such-profile")
    with pytest.raises(ConfigError, match=r"s3\.profile 'no-such-profile'"):
        preflight("s3://any-bucket/a.zarr", settings)


def test_an_unreachable_endpoint_fails_fast(s3_env: dict[str, str]) -> None:
    (port,) = free_ports(1)  # nothing listens there
    settings = S3Settings(endpoint=f"http://127.0.0.1:{port}", region="us-east-1", max_attempts=5)
    started = time.monotonic()
    with pytest.raises(StorageError, match="cannot reach the endpoint"):
        preflight("s3://any-bucket/a.zarr", settings)
    assert time.monotonic() - started < 5


def test_an_invalid_path_is_a_config_error(s3_settings: S3Settings) -> None:
    with pytest.raises(ConfigError, match="needs a prefix"):
        preflight("s3://some-bucket", s3_settings)
