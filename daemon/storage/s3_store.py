"""The S3 :class:`~daemon.storage.sink.Store`: a prefix in a bucket (``s3://bucket/prefix/name.zarr``), and its
``preflight`` check.

Design notes:
- Store keys map to object keys under the prefix (``prefix/key``); small objects are one PUT (atomic on S3),
  large ones go through an :class:`~daemon.storage.s3_sink.S3Sink`.
- ``is_empty`` and ``clear`` look at ``prefix/`` only (never at ``prefix2/`` beside it); ``clear`` also aborts
  multipart uploads left under the prefix by an earlier crashed run, so an overwrite starts clean.
- :func:`preflight` fails fast and clearly before a run: credentials present, endpoint reachable, bucket present
  and readable, and a probe object PUT then DELETEd under the prefix. It makes at most two attempts per request,
  so an unreachable endpoint does not keep the user waiting for the run's full retry budget.
- One boto3 client per store (clients are thread-safe; the engine's workers share it).
"""

from __future__ import annotations

import hashlib
import threading
import time
import uuid
from collections import OrderedDict
from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

from daemon.errors import StorageError
from daemon.log import get_logger
from daemon.storage.s3_client import client_from_session, error_code, make_client, make_session, s3_errors
from daemon.storage.s3_names import S3Location, parse_s3_url
from daemon.storage.s3_settings import S3Settings
from daemon.storage.s3_sink import S3Sink
from daemon.storage.sink import Buffer, Store

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

PREFLIGHT_MAX_ATTEMPTS = 2
DELETE_BATCH = 1000  # DeleteObjects takes at most 1000 keys

log = get_logger(__name__)


class S3Store(Store):
    """Objects under ``s3://bucket/prefix/``."""

    def __init__(self, location: S3Location, settings: S3Settings, client: S3Client | None = None) -> None:
        self._location = location
        self._settings = settings
        self._client = client if client is not None else make_client(settings)
        self._closed = False

    @classmethod
    def from_url(cls, url: str, settings: S3Settings) -> S3Store:
        """``S3Store.from_url("s3://bucket/prefix/name.zarr", settings)``."""
        return cls(parse_s3_url(url), settings)

    @property
    def url(self) -> str:
        return self._location.url

    @property
    def location(self) -> S3Location:
        return self._location

    @property
    def client(self) -> S3Client:
        return self._client

    def open_sink(self, key: str) -> S3Sink:
        return S3Sink(
            self._client,
            self._location.bucket,
            self._location.object_key(key),
            key,
            self._settings.part_size,
        )

    def put(self, key: str, data: Buffer) -> None:
        object_key = self._location.object_key(key)
        with s3_errors("put_object", self._location.bucket, object_key):
            self._client.put_object(Bucket=self._location.bucket, Key=object_key, Body=bytes(data))

    def get(self, key: str) -> bytes | None:
        object_key = self._location.object_key(key)
        with s3_errors("get_object", self._location.bucket, object_key):
            try:
                reply = self._client.get_object(Bucket=self._location.bucket, Key=object_key)
            except ClientError as exc:
                if error_code(exc) in ("NoSuchKey", "404"):
                    return None
                raise
            return reply["Body"].read()

    def is_empty(self) -> bool:
        with s3_errors("list_objects_v2", self._location.bucket, self._location.folder):
            reply = self._client.list_objects_v2(Bucket=self._location.bucket, Prefix=self._location.folder, MaxKeys=1)
        return not reply.get("Contents")

    def clear(self) -> None:
        """Delete every object under the prefix and abort the multipart uploads left there."""
        deleted = self._delete_objects()
        aborted = self._abort_uploads()
        log.info("s3_store_cleared", url=self.url, objects=deleted, uploads_aborted=aborted)

    def _delete_objects(self) -> int:
        bucket, folder = self._location.bucket, self._location.folder
        deleted = 0
        with s3_errors("delete_objects", bucket, folder):
            pages = self._client.get_paginator("list_objects_v2").paginate(
                Bucket=bucket, Prefix=folder, PaginationConfig={"PageSize": DELETE_BATCH}
            )
            for page in pages:
                keys = [item["Key"] for item in page.get("Contents", []) if "Key" in item]
                if not keys:
                    continue
                reply = self._client.delete_objects(
                    Bucket=bucket, Delete={"Objects": [{"Key": k} for k in keys], "Quiet": True}
                )
                errors = reply.get("Errors", [])
                if errors:
                    first = errors[0]
                    raise StorageError(
                        f"S3 delete_objects under s3://{bucket}/{folder} failed for {len(errors)} objects, "
                        f"e.g. {first.get('Key')!r}: {first.get('Code')} {first.get('Message', '')}".rstrip()
                        + "."
                    )
                deleted += len(keys)
        return deleted

    def _abort_uploads(self) -> int:
        bucket, folder = self._location.bucket, self._location.folder
        aborted = 0
        with s3_errors("abort_multipart_upload", bucket, folder):
            pages = self._client.get_paginator("list_multipart_uploads").paginate(Bucket=bucket, Prefix=folder)
            for page in pages:
                for upload in page.get("Uploads", []):
                    key, upload_id = upload.get("Key"), upload.get("UploadId")
                    if key is None or upload_id is None or not key.startswith(folder):
                        continue
                    self._client.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
                    aborted += 1
        return aborted

    def close(self) -> None:
        """Close the client's connections. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._client.close()


def preflight(store_path: str, settings: S3Settings) -> None:
    """Check, before a run, that ``store_path`` can be written; raise StorageError (or ConfigError) saying why not.

    Checks credentials are present, the endpoint answers, the bucket exists and the credentials may use it, then
    PUTs and DELETEs a small probe object under the prefix.
    """
    location = parse_s3_url(store_path)
    started = time.monotonic()
    key, client = _preflight_client(location, settings)
    try:
        _check_bucket(client, location, settings)
        probe = location.object_key(f".acqd-preflight-{uuid.uuid4().hex}")
        with s3_errors("preflight put_object", location.bucket, probe):
            client.put_object(Bucket=location.bucket, Key=probe, Body=b"acqd preflight probe\n")
        with s3_errors("preflight delete_object", location.bucket, probe):
            client.delete_object(Bucket=location.bucket, Key=probe)
    except BaseException:
        _forget_client(key)  # a failure may be the client's own (stale credentials): the next preflight builds anew
        raise
    log.info("s3_preflight_ok", url=location.url, endpoint=settings.endpoint, elapsed_s=time.monotonic() - started)


# A daemon preflights every S3 run; building a boto3 client each time grew its memory for good (botocore keeps
# per-client model objects alive: boto/boto3#1670), so clients are kept, per settings and credentials.
_PREFLIGHT_CLIENTS_MAX = 4
_preflight_clients: OrderedDict[tuple[str, str], S3Client] = OrderedDict()
_preflight_lock = threading.Lock()


def _preflight_client(location: S3Location, settings: S3Settings) -> tuple[tuple[str, str], S3Client]:
    """A client for ``settings`` and the credentials the chain yields now (a fresh session resolves them each time,
    so rotated credentials get their own client); StorageError when there are none."""
    session = make_session(settings)
    credentials = session.get_credentials()
    if credentials is None:
        raise StorageError(
            f"S3 preflight of {location.url} failed: no S3 credentials found (set AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY, a shared credentials file, s3.profile, or use an instance role)."
        )
    frozen = credentials.get_frozen_credentials()
    secret = f"{frozen.access_key}\0{frozen.secret_key}\0{frozen.token}".encode()
    key = (repr(settings), hashlib.sha256(secret).hexdigest())
    with _preflight_lock:
        client = _preflight_clients.pop(key, None)
        if client is not None:
            _preflight_clients[key] = client  # most recently used last
            return key, client
    client = client_from_session(session, settings, max_attempts=min(PREFLIGHT_MAX_ATTEMPTS, settings.max_attempts))
    with _preflight_lock:
        _preflight_clients[key] = client
        while len(_preflight_clients) > _PREFLIGHT_CLIENTS_MAX:
            _preflight_clients.popitem(last=False)  # not closed: another preflight may still be using it
    return key, client


def _forget_client(key: tuple[str, str]) -> None:
    with _preflight_lock:
        _preflight_clients.pop(key, None)


def preflight_clients() -> int:
    """How many preflight clients are kept (at most 4)."""
    with _preflight_lock:
        return len(_preflight_clients)


def _check_bucket(client: S3Client, location: S3Location, settings: S3Settings) -> None:
    endpoint = settings.endpoint or "AWS"
    with s3_errors("preflight head_bucket", location.bucket):
        try:
            client.head_bucket(Bucket=location.bucket)
        except ClientError as exc:
            if error_code(exc) not in ("404", "NoSuchBucket"):
                raise
            raise StorageError(
                f"S3 preflight of {location.url} failed: bucket {location.bucket!r} does not exist at {endpoint}."
            ) from exc
