"""The boto3 edge: building an S3 client from :class:`S3Settings` and turning botocore failures into StorageError.

Design notes:
- Credentials come only from boto3's own chain (environment, shared credentials file, ``s3.profile``, instance
  role). They are never read, stored, logged or put in a message here.
- Retries are botocore's "standard" mode, set explicitly with ``max_attempts`` (botocore's ``total_max_attempts``:
  the first try included; botocore's own ``max_attempts`` key would count retries only) and the connect/read
  timeouts from the settings, so behaviour does not depend on a user's ``~/.aws/config``. What the retries could
  not absorb becomes a :class:`~daemon.errors.StorageError` naming the action, bucket and key (:func:`s3_errors`).
- A custom endpoint (SeaweedFS, MinIO, ...) is addressed path-style; AWS itself keeps botocore's default.
- Only this module and its two users (``s3_sink``, ``s3_store``) import boto3/botocore.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionError,
    NoCredentialsError,
    ProfileNotFound,
    ReadTimeoutError,
)

from daemon.errors import ConfigError, StorageError
from daemon.storage.s3_settings import S3Settings

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

USER_AGENT = "acqd"
MAX_POOL_CONNECTIONS = 32  # above the engine's worker threads, so no connection is dropped and reopened
_DENIED = {"403", "AccessDenied", "Forbidden", "InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidToken"}
_MISSING_BUCKET = {"NoSuchBucket"}


def make_session(settings: S3Settings) -> boto3.session.Session:
    """A boto3 session on the usual credential chain (optionally a named profile)."""
    try:
        return boto3.session.Session(profile_name=settings.profile)
    except ProfileNotFound as exc:
        raise ConfigError(
            f"s3.profile {settings.profile!r} was not found in the shared credentials or config files."
        ) from exc


def make_client(settings: S3Settings, *, max_attempts: int | None = None) -> S3Client:
    """An S3 client with explicit retries and timeouts. ``max_attempts`` overrides the settings (preflight)."""
    return client_from_session(make_session(settings), settings, max_attempts=max_attempts)


def client_from_session(
    session: boto3.session.Session, settings: S3Settings, *, max_attempts: int | None = None
) -> S3Client:
    config = Config(
        retries={"mode": "standard", "total_max_attempts": max_attempts or settings.max_attempts},
        connect_timeout=settings.connect_timeout_s,
        read_timeout=settings.read_timeout_s,
        user_agent_extra=USER_AGENT,
        max_pool_connections=MAX_POOL_CONNECTIONS,
        s3={"addressing_style": "path" if settings.endpoint else "auto"},
    )
    try:
        return session.client("s3", endpoint_url=settings.endpoint, region_name=settings.region, config=config)
    except BotoCoreError as exc:
        raise ConfigError(f"cannot build an S3 client for endpoint {settings.endpoint!r}: {exc}") from exc


def error_code(exc: BaseException) -> str:
    """The S3 error code of a ClientError ('NoSuchKey', '404', ...), else the exception's class name."""
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", "Unknown"))
    return type(exc).__name__


def describe(exc: BaseException) -> str:
    """A short reason for a botocore failure: never credentials (botocore puts none in these texts)."""
    code = error_code(exc)
    if isinstance(exc, NoCredentialsError):
        return (
            "no S3 credentials found (set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, a shared credentials file, "
            "s3.profile, or use an instance role)"
        )
    if isinstance(exc, ClientError):
        message = str(exc.response.get("Error", {}).get("Message", "")).strip()
        if code in _DENIED:
            return f"access denied ({code}): check the access key, the secret and the bucket's policy"
        if code in _MISSING_BUCKET:
            return f"the bucket does not exist ({code})"
        return f"{code}: {message}" if message else code
    if isinstance(exc, ReadTimeoutError):
        return f"no answer from the endpoint in time ({code})"
    if isinstance(exc, ConnectionError):
        return f"cannot reach the endpoint ({code}: {exc})"
    return f"{code}: {exc}"


@contextmanager
def s3_errors(action: str, bucket: str, key: str = "") -> Iterator[None]:
    """Translate botocore failures inside the block into StorageError naming ``action`` and the object."""
    try:
        yield
    except (BotoCoreError, ClientError) as exc:
        where = f"s3://{bucket}/{key}" if key else f"s3://{bucket}"
        raise StorageError(f"S3 {action} of {where} failed: {describe(exc)}.") from exc
