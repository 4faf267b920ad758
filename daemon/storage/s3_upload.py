"""Uploading one complete local file to S3, verified: the outcome is an :class:`UploadResult`, never a raise.

Design notes:
- A file that fits in one part (``part_size``) is one PUT; a larger one is a multipart upload of ``part_size``
  parts (more when 10,000 parts would not hold it), read from the file one part at a time, so memory stays at
  one part per upload whatever the object's size.
- Every request body carries ``Content-MD5`` (the MD5 of the bytes read from the file): the server refuses a body
  damaged on its way (``BadDigest``) instead of storing it. After the upload, ``head_object`` checks the object's
  size and its ETag (the MD5, or for a multipart upload the MD5 of the parts' MD5s and ``-<parts>``; the ETag is
  not checked when the object is KMS- or customer-key encrypted, where it is no MD5). SeaweedFS, MinIO and AWS
  all check Content-MD5; botocore's default CRC32 checksum is sent as well. (CRC32C would need botocore[crt].)
- Outcomes are an enum: ``UPLOADED``; ``RETRY`` for what may pass (network down, timeouts, 5xx, a damaged body,
  a failed verification); ``FAILED`` for what will not pass by waiting (access denied, no such bucket, no
  credentials, the local file unreadable). A failed multipart upload is aborted (best effort).
"""

from __future__ import annotations

import base64
import enum
import hashlib
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from daemon.errors import StorageError
from daemon.log import get_logger
from daemon.storage.file_store import storage_errors
from daemon.storage.s3_client import describe, error_code, s3_errors
from daemon.storage.s3_sink import MAX_PARTS

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import CompletedPartTypeDef

# Errors no retry will cure: the store fails (sticky) and keeps every object journaled for a later resume.
PERMANENT_CODES = frozenset(
    {
        "403",
        "AccessDenied",
        "AccountProblem",
        "AllAccessDisabled",
        "Forbidden",
        "InvalidAccessKeyId",
        "InvalidBucketName",
        "NoCredentialsError",
        "NoSuchBucket",
        "PartialCredentialsError",
        "SignatureDoesNotMatch",
    }
)
_OPAQUE_ETAG_ENCRYPTION = ("aws:kms", "aws:kms:dsse")

log = get_logger(__name__)


class Outcome(enum.Enum):
    UPLOADED = "uploaded"
    RETRY = "retry"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class UploadResult:
    outcome: Outcome
    error: StorageError | None = None
    etag: str | None = None  # the verified ETag (without quotes) when uploaded


def classify(error: StorageError) -> Outcome:
    """RETRY or FAILED for an upload error, from the S3 error code behind it."""
    cause = error.__cause__
    return Outcome.FAILED if cause is not None and error_code(cause) in PERMANENT_CODES else Outcome.RETRY


class FileUploader:
    """Uploads local files to objects of ``bucket`` (thread-safe: shares one boto3 client)."""

    def __init__(self, client: S3Client, bucket: str, part_size: int) -> None:
        self._client = client
        self._bucket = bucket
        self._part_size = part_size

    def upload(self, path: Path, object_key: str, stop: threading.Event | None = None) -> UploadResult:
        """Upload the file at ``path`` to ``object_key`` and verify it. A multipart upload gives up between parts
        (RETRY) once ``stop`` is set, so stopping waits for one request at most."""
        try:
            with storage_errors("open", path):
                fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except StorageError as exc:
            return UploadResult(Outcome.FAILED, exc)
        try:
            size = os.fstat(fd).st_size
            etag = self._send(fd, path, object_key, size, stop)
            self._verify(object_key, size, etag)
        except StorageError as exc:
            return UploadResult(classify(exc), exc)
        finally:
            os.close(fd)
        return UploadResult(Outcome.UPLOADED, etag=etag)

    def _where(self, object_key: str) -> str:
        return f"s3://{self._bucket}/{object_key}"

    def _send(self, fd: int, path: Path, object_key: str, size: int, stop: threading.Event | None) -> str:
        """Send the file; returns the ETag S3 should report for it."""
        if size <= self._part_size:
            body = read_at(fd, path, 0, size)
            digest = hashlib.md5(body, usedforsecurity=False).digest()
            with s3_errors("put_object", self._bucket, object_key):
                self._client.put_object(Bucket=self._bucket, Key=object_key, Body=body, ContentMD5=_b64(digest))
            return digest.hex()
        with s3_errors("create_multipart_upload", self._bucket, object_key):
            upload_id = self._client.create_multipart_upload(Bucket=self._bucket, Key=object_key)["UploadId"]
        try:
            digests = self._send_parts(fd, path, object_key, size, upload_id, stop)
        except StorageError as exc:
            self._abort(object_key, upload_id, exc)
            raise
        return hashlib.md5(b"".join(digests), usedforsecurity=False).hexdigest() + f"-{len(digests)}"

    def _send_parts(
        self, fd: int, path: Path, object_key: str, size: int, upload_id: str, stop: threading.Event | None
    ) -> list[bytes]:
        part_size = max(self._part_size, -(-size // MAX_PARTS))
        parts: list[CompletedPartTypeDef] = []
        digests: list[bytes] = []
        for number, offset in enumerate(range(0, size, part_size), start=1):
            if stop is not None and stop.is_set():
                raise StorageError(f"upload of {self._where(object_key)} stopped after {number - 1} parts.")
            body = read_at(fd, path, offset, min(part_size, size - offset))
            digest = hashlib.md5(body, usedforsecurity=False).digest()
            with s3_errors("upload_part", self._bucket, object_key):
                reply = self._client.upload_part(
                    Bucket=self._bucket,
                    Key=object_key,
                    UploadId=upload_id,
                    PartNumber=number,
                    Body=body,
                    ContentMD5=_b64(digest),
                )
            parts.append({"PartNumber": number, "ETag": reply["ETag"]})
            digests.append(digest)
        with s3_errors("complete_multipart_upload", self._bucket, object_key):
            self._client.complete_multipart_upload(
                Bucket=self._bucket, Key=object_key, UploadId=upload_id, MultipartUpload={"Parts": parts}
            )
        return digests

    def _abort(self, object_key: str, upload_id: str, error: StorageError) -> None:
        try:
            with s3_errors("abort_multipart_upload", self._bucket, object_key):
                self._client.abort_multipart_upload(Bucket=self._bucket, Key=object_key, UploadId=upload_id)
        except StorageError as abort_error:  # the server is gone: clear() aborts what is left under the prefix
            reason = describe(abort_error.__cause__ or abort_error)
            error.add_note(f"the multipart upload could not be aborted ({reason}).")
            log.warning("s3_abort_failed", bucket=self._bucket, key=object_key, reason=reason)

    def _verify(self, object_key: str, size: int, etag: str) -> None:
        with s3_errors("head_object", self._bucket, object_key):
            head: Any = self._client.head_object(Bucket=self._bucket, Key=object_key)
        got_size = int(head.get("ContentLength", -1))
        if got_size != size:
            raise StorageError(
                f"S3 verification of {self._where(object_key)} failed: it holds {got_size} bytes, not {size}."
            )
        got_etag = str(head.get("ETag", "")).strip('"')
        opaque = head.get("ServerSideEncryption") in _OPAQUE_ETAG_ENCRYPTION or head.get("SSECustomerAlgorithm")
        if not opaque and got_etag != etag:
            raise StorageError(
                f"S3 verification of {self._where(object_key)} failed: its ETag is {got_etag!r}, not {etag!r}."
            )


def read_at(fd: int, path: Path, offset: int, size: int) -> bytes:
    """Exactly ``size`` bytes of the file at ``offset`` (a short file is a StorageError)."""
    pieces = []
    done = 0
    with storage_errors("read", path):
        while done < size:
            piece = os.pread(fd, size - done, offset + done)
            if not piece:
                raise StorageError(f"cannot read {path}: it ended after {offset + done} bytes.")
            pieces.append(piece)
            done += len(piece)
    return pieces[0] if len(pieces) == 1 else b"".join(pieces)  # one piece: no copy


def _b64(digest: bytes) -> str:
    return base64.b64encode(digest).decode("ascii")
