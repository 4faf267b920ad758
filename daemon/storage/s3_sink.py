"""One S3 object under construction: buffered in one part, growing into a multipart upload when it outgrows it.

Design notes (after acquire-zarr's ``s3.sink``):
- The sink holds at most one part (``part_size`` bytes) in memory. While the object fits in one part nothing is
  sent; ``finalize`` then makes it visible with a single PUT. When a write needs room past a full part, the
  multipart upload is started and the full part is uploaded (parts are ``part_size`` bytes, only the last may be
  smaller, so every non-last part is >= 5 MiB). ``finalize`` uploads the rest and completes the upload.
- Writes go forward, as for every sink: a write behind what was already written is refused (a part that was
  sent cannot be taken back; refusing earlier too keeps S3 and local stores alike), a gap is zero-filled.
- Any failure the botocore retries could not absorb is sticky: the multipart upload is aborted at once (so no
  partial object becomes visible and no incomplete upload is left), the sink turns ABORTED and every later
  ``write``/``finalize`` raises :class:`~daemon.errors.StreamClosedError`. If the abort itself failed (server
  gone), the upload id is kept and :meth:`S3Sink.abort` tries again.
- One writer at a time; a sink is not shared between threads.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, NoReturn, TypeVar, cast

from botocore.exceptions import ClientError

from daemon.errors import StorageError, StreamClosedError
from daemon.log import get_logger
from daemon.storage.s3_client import describe, error_code, s3_errors
from daemon.storage.sink import Buffer, Sink, SinkState

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import CompletedPartTypeDef

MAX_PARTS = 10_000  # S3's limit on the parts of one multipart upload

log = get_logger(__name__)
_T = TypeVar("_T")


class S3Sink(Sink):
    """Builds ``s3://bucket/object_key``; ``key`` is the store key it was opened for."""

    def __init__(self, client: S3Client, bucket: str, object_key: str, key: str, part_size: int) -> None:
        self._client = client
        self._bucket = bucket
        self._object_key = object_key
        self._key = key
        self._part_size = part_size
        self._buf = bytearray()
        self._flushed = 0  # bytes already sent as parts
        self._upload_id: str | None = None
        self._parts: list[CompletedPartTypeDef] = []
        self._state = SinkState.OPEN
        self._error: StorageError | None = None

    @property
    def key(self) -> str:
        return self._key

    @property
    def state(self) -> SinkState:
        return self._state

    @property
    def parts_uploaded(self) -> int:
        """How many parts were sent so far (0 while the object fits in one part)."""
        return len(self._parts)

    @property
    def buffered_bytes(self) -> int:
        """Bytes held in memory, waiting for the next part or ``finalize``."""
        return len(self._buf)

    # -- writing -------------------------------------------------------------------------------------------------

    def write(self, offset: int, buffers: Sequence[Buffer]) -> None:
        self._check_open("write")
        end = self._flushed + len(self._buf)
        if offset < end:
            raise StorageError(
                f"write at offset {offset} of s3://{self._bucket}/{self._object_key} is behind the "
                f"{end} bytes already written."
            )
        pos = offset - self._flushed
        for buffer in buffers:
            data = memoryview(buffer).cast("B")
            while data.nbytes:
                pos, data = self._write_some(pos, data)

    def _write_some(self, pos: int, data: memoryview) -> tuple[int, memoryview]:
        """Append what fits of ``data`` at ``pos`` (>= the buffer's end) in the part being built; returns the new
        position and the rest. A full part is sent only when more bytes need room, so an object of exactly one
        part is still a single PUT."""
        if pos >= self._part_size:
            self._fill_to(self._part_size)
            self._flush_part()
            return pos - self._part_size, data
        self._fill_to(pos)
        n = min(data.nbytes, self._part_size - pos)
        self._buf += data[:n]
        return pos + n, data[n:]

    def _fill_to(self, size: int) -> None:
        if len(self._buf) < size:
            self._buf.extend(bytes(size - len(self._buf)))

    def _flush_part(self) -> None:
        if len(self._parts) + 2 > MAX_PARTS:  # this part, and room for the last one
            self._fail(
                StorageError(
                    f"s3://{self._bucket}/{self._object_key} would need more than {MAX_PARTS} parts of "
                    f"{self._part_size} bytes; raise s3.part_size."
                )
            )
        if self._upload_id is None:
            self._upload_id = self._guarded("create_multipart_upload", self._create_upload)
            log.debug("s3_multipart_started", bucket=self._bucket, key=self._object_key)
        self._guarded("upload_part", self._upload_part)
        self._flushed += len(self._buf)
        self._buf = bytearray()

    def _create_upload(self) -> str:
        return self._client.create_multipart_upload(Bucket=self._bucket, Key=self._object_key)["UploadId"]

    def _upload_part(self) -> None:
        assert self._upload_id is not None
        number = len(self._parts) + 1
        reply = self._client.upload_part(
            Bucket=self._bucket,
            Key=self._object_key,
            UploadId=self._upload_id,
            PartNumber=number,
            Body=_body(self._buf),
        )
        self._parts.append({"PartNumber": number, "ETag": reply["ETag"]})

    # -- ending --------------------------------------------------------------------------------------------------

    def finalize(self) -> None:
        if self._state is SinkState.FINALIZED:
            return
        self._check_open("finalize")
        if self._upload_id is None:
            self._guarded("put_object", self._put_whole)
        else:
            if self._buf:
                self._guarded("upload_part", self._upload_part)
                self._flushed += len(self._buf)
            self._guarded("complete_multipart_upload", self._complete)
            self._upload_id = None
        self._buf = bytearray()
        self._state = SinkState.FINALIZED
        log.debug("s3_object_written", bucket=self._bucket, key=self._object_key, parts=len(self._parts))

    def _put_whole(self) -> None:
        self._client.put_object(Bucket=self._bucket, Key=self._object_key, Body=_body(self._buf))
        self._flushed = len(self._buf)

    def _complete(self) -> None:
        assert self._upload_id is not None
        self._client.complete_multipart_upload(
            Bucket=self._bucket,
            Key=self._object_key,
            UploadId=self._upload_id,
            MultipartUpload={"Parts": self._parts},
        )

    def abort(self) -> None:
        """Discard the object. Idempotent; retries an abort that failed earlier; a no-op after ``finalize``."""
        if self._state is SinkState.FINALIZED:
            return
        self._state = SinkState.ABORTED
        self._buf = bytearray()
        if self._upload_id is not None:
            with s3_errors("abort_multipart_upload", self._bucket, self._object_key):
                self._abort_upload()

    def _abort_upload(self) -> None:
        assert self._upload_id is not None
        try:
            self._client.abort_multipart_upload(Bucket=self._bucket, Key=self._object_key, UploadId=self._upload_id)
        except ClientError as exc:
            if error_code(exc) != "NoSuchUpload":  # already gone: what abort wanted
                raise
        self._upload_id = None

    # -- failure -------------------------------------------------------------------------------------------------

    def _guarded(self, action: str, step: Callable[[], _T]) -> _T:
        """Run one S3 call; a failure aborts the upload and becomes the sink's sticky error."""
        try:
            with s3_errors(action, self._bucket, self._object_key):
                return step()
        except StorageError as exc:
            self._fail(exc)

    def _fail(self, error: StorageError) -> NoReturn:
        self._error = error
        try:
            self.abort()
        except StorageError as abort_error:
            reason = describe(abort_error.__cause__ or abort_error)
            error.add_note(f"the multipart upload could not be aborted yet ({reason}); abort() retries it.")
            log.warning("s3_abort_failed", bucket=self._bucket, key=self._object_key, reason=reason)
        raise error

    def _check_open(self, action: str) -> None:
        if self._state is SinkState.OPEN:
            return
        where = f"s3://{self._bucket}/{self._object_key}"
        if self._error is not None:
            raise StreamClosedError(f"cannot {action} {where}: it failed earlier ({self._error}).") from self._error
        raise StreamClosedError(f"cannot {action} {where}: the sink is {self._state.value}.")


def _body(buf: bytearray) -> bytes:
    """botocore sends a bytearray as is (its validator accepts it); the stubs only say bytes. Avoids a copy."""
    return cast("bytes", buf)
