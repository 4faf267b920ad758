"""Credentials never show: not in error messages (nor their causes), not in structlog events, not in stdlib logs."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator

import pytest
import structlog
from structlog.testing import capture_logs

from daemon.errors import StorageError
from daemon.log import configure
from daemon.storage.s3_settings import MIN_PART_SIZE
from daemon.storage.s3_store import S3Store, preflight
from tests.fixtures.s3 import SeaweedServer, free_ports

pytestmark = pytest.mark.s3


@pytest.fixture
def daemon_logging() -> Iterator[None]:
    """Logging set up as the daemon does (botocore kept at WARNING even when acqd logs at DEBUG), then restored."""
    saved = structlog.get_config()
    levels = {name: logging.getLogger(name).level for name in ("botocore", "boto3", "urllib3", "s3transfer")}
    configure(level="DEBUG")
    yield
    structlog.configure(**saved)
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)


def chain_text(exc: BaseException) -> str:
    """str and repr of an exception and of everything it was raised from."""
    texts = []
    current: BaseException | None = exc
    while current is not None:
        texts += [str(current), repr(current)]
        current = current.__cause__ or current.__context__
    return "\n".join(texts)


def failing_preflight_wrong_secret(server: SeaweedServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "x" + server.secret_key[1:])
    preflight(f"s3://{server.make_bucket()}/a.zarr", server.settings())


def failing_preflight_missing_bucket(server: SeaweedServer, monkeypatch: pytest.MonkeyPatch) -> None:
    preflight("s3://acqd-missing-bucket/a.zarr", server.settings())


def failing_preflight_unreachable(server: SeaweedServer, monkeypatch: pytest.MonkeyPatch) -> None:
    preflight("s3://some-bucket/a.zarr", server.settings(endpoint=f"http://127.0.0.1:{free_ports(1)[0]}"))


def failing_upload(server: SeaweedServer, monkeypatch: pytest.MonkeyPatch) -> None:
    bucket = server.make_bucket()
    store = S3Store.from_url(f"s3://{bucket}/a.zarr", server.settings())
    sink = store.open_sink("shard")
    sink.write(0, [bytes(MIN_PART_SIZE + 1)])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "y" + server.secret_key[1:])  # not seen by the existing client
    server.client().delete_bucket(Bucket=bucket)
    sink.write(MIN_PART_SIZE + 1, [bytes(MIN_PART_SIZE)])


@pytest.mark.parametrize(
    "failure",
    [failing_preflight_wrong_secret, failing_preflight_missing_bucket, failing_preflight_unreachable, failing_upload],
)
def test_credentials_never_appear_in_errors_or_logs(
    s3_server: SeaweedServer,
    s3_env: dict[str, str],
    daemon_logging: None,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    failure: Callable[[SeaweedServer, pytest.MonkeyPatch], None],
) -> None:
    caplog.set_level(logging.DEBUG)
    with capture_logs() as events, pytest.raises(StorageError) as info:
        failure(s3_server, monkeypatch)
    secrets = [s3_server.secret_key, s3_server.access_key, s3_server.secret_key[1:]]
    texts = [chain_text(info.value), repr(events), caplog.text]
    for text in texts:
        for secret in secrets:
            assert secret not in text
    assert "s3://" in str(info.value)  # the message still says where
