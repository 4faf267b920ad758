"""The staged S3 :class:`~daemon.storage.sink.Store`: write to a local folder first, upload in the background.

``StagedS3Store`` is what ``open_store`` gives for an ``s3://`` path when ``s3.staging_dir`` is set. Sinks and
``put`` write local files (``.partial``/``.tmp``, fsync, rename: :class:`~daemon.storage.file_store.FileSink`
semantics); each finalized object is committed to the :class:`~daemon.storage.upload_journal.UploadJournal` and
queued; :class:`~daemon.storage.upload_queue.UploadQueue` threads upload it (:class:`FileUploader`: Content-MD5,
then size and ETag checked) and delete the local copy (or keep it). A network outage only delays the uploads:
the stream keeps writing locally, bounded by the local disk.

Design notes:
- Order: metadata (``put``) is uploaded only after every object finalized before it, so S3 never holds metadata
  claiming chunks or shards that are not there yet; data objects go in parallel (``upload_threads``).
- ``get`` answers with the newest local version while one waits for upload, else with the S3 object; ``is_empty``
  is "nothing pending and nothing in S3"; ``clear`` drops what is pending, then empties the S3 prefix.
- ``close`` waits up to ``upload_wait_s`` for the uploads (plus at most one request's timeout), then stops: what
  is left stays journaled and :meth:`StagedS3Store.upload_stats` says ``pending_uploads`` (not an error: no frame
  is lost; :func:`resume_uploads` finishes the job, here or after a restart). The staging folder of the store is
  removed once everything was uploaded (unless copies are kept).
- Errors: local disk errors are StorageErrors when they happen (as with FileStore). A permanent S3 error (access
  denied, no such bucket) stops the uploads and is raised by the next ``open_sink``/``write``/``finalize``/``put``
  and by ``close`` (sticky); the objects stay journaled.
- The upload client makes one attempt per request (the queue retries with its own backoff), so stopping never
  waits for botocore's whole retry budget; ``get``/``is_empty``/``clear`` use an :class:`S3Store` with the
  settings' retries.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from daemon.errors import ConfigError, StorageError, StreamClosedError
from daemon.log import get_logger
from daemon.storage.file_store import FileSink
from daemon.storage.s3_client import client_from_session, make_session
from daemon.storage.s3_names import S3Location, parse_s3_url
from daemon.storage.s3_settings import S3Settings
from daemon.storage.s3_store import S3Store
from daemon.storage.s3_upload import FileUploader, UploadResult
from daemon.storage.sink import Buffer, Sink, SinkState, Store, parse_key
from daemon.storage.upload_journal import ObjectKind, StagedObject, UploadJournal, staged_locations
from daemon.storage.upload_queue import RETRY_MAX_S, UploadQueue, UploadStats

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

UPLOAD_MAX_ATTEMPTS = 1  # per request; the queue retries

log = get_logger(__name__)


class StagedSink(Sink):
    """One object built in the staging folder; ``finalize`` commits it for upload."""

    def __init__(
        self, inner: FileSink, key: str, check: Callable[[str], None], commit: Callable[[Path, str], None]
    ) -> None:
        self._inner = inner
        self._key = key
        self._check = check
        self._commit = commit
        self._committed = False

    @property
    def key(self) -> str:
        return self._key

    @property
    def state(self) -> SinkState:
        return SinkState.FINALIZED if self._committed else self._inner.state

    def write(self, offset: int, buffers: Sequence[Buffer]) -> None:
        self._check_store("write")
        self._inner.write(offset, buffers)

    def finalize(self) -> None:
        if self._committed:
            return
        self._check_store("finalize")
        self._inner.finalize()
        try:
            self._commit(self._inner.path, self._key)
        except StorageError:
            self._inner.path.unlink(missing_ok=True)
            raise
        self._committed = True

    def abort(self) -> None:
        if not self._committed:
            self._inner.abort()

    def _check_store(self, action: str) -> None:
        """The store's sticky upload error (or its being closed) fails an open sink, as a write error would."""
        if self._inner.state is not SinkState.OPEN:
            return  # the inner sink raises StreamClosedError
        try:
            self._check(action)
        except StorageError:
            self._inner.abort()
            raise


class StagedS3Store(Store):
    """Objects under ``s3://bucket/prefix/``, written to ``staging_dir`` first and uploaded in the background."""

    def __init__(
        self,
        location: S3Location,
        settings: S3Settings,
        *,
        client: S3Client | None = None,
        retry_max_s: float = RETRY_MAX_S,
    ) -> None:
        if settings.staging_dir is None:
            raise ConfigError("s3.staging_dir must be set for a staged S3 store. Got None instead.")
        self._settings = settings
        session = make_session(settings)  # one session for both clients: building a client is costly
        self._remote = S3Store(location, settings, client or client_from_session(session, settings))
        self._upload_client = client_from_session(session, settings, max_attempts=UPLOAD_MAX_ATTEMPTS)
        self._uploader = FileUploader(self._upload_client, location.bucket, settings.part_size)
        self._commit_lock = threading.Lock()
        self._closed = False
        try:
            self._journal = UploadJournal(settings.staging_dir, location, settings.endpoint)
        except BaseException:
            self._upload_client.close()
            self._remote.close()
            raise
        self._queue = UploadQueue(
            self._upload, self._retire, threads=settings.upload_threads, name=location.url, retry_max_s=retry_max_s
        )
        recovered = self._journal.recovered()
        for entry in recovered:
            self._queue.add(entry)
        if recovered:
            log.info(
                "staged_uploads_resumed",
                store=self.url,
                objects=len(recovered),
                bytes=sum(e.size for e in recovered),
            )

    @classmethod
    def from_url(cls, url: str, settings: S3Settings, *, retry_max_s: float = RETRY_MAX_S) -> StagedS3Store:
        return cls(parse_s3_url(url), settings, retry_max_s=retry_max_s)

    @property
    def url(self) -> str:
        return self._remote.url

    @property
    def location(self) -> S3Location:
        return self._remote.location

    @property
    def staging_folder(self) -> Path:
        """This store's folder in ``staging_dir`` (removed by ``close`` once everything is uploaded)."""
        return self._journal.root

    @property
    def upload_client(self) -> S3Client:
        return self._upload_client

    def upload_stats(self) -> UploadStats:
        return self._queue.stats()

    def wait_for_uploads(self, timeout_s: float | None = None) -> bool:
        """Wait until every object finalized so far is uploaded (True), or the timeout passed or uploads failed."""
        return self._queue.wait(timeout_s)

    # -- Store ----------------------------------------------------------------------------------------------------

    def open_sink(self, key: str) -> StagedSink:
        parse_key(key)
        self._check("open a sink in")
        return StagedSink(self._journal.open_working(key), key, self._check, self._commit_data)

    def put(self, key: str, data: Buffer) -> None:
        parse_key(key)
        self._check("put")
        working = self._journal.put_working(key, data)
        try:
            self._commit(working, key, ObjectKind.META)
        except StorageError:
            self._journal.discard_working(working)
            raise

    def get(self, key: str) -> bytes | None:
        entry = self._queue.staged(parse_key(key))
        if entry is not None:
            try:
                return entry.path.read_bytes()
            except FileNotFoundError:
                pass  # uploaded meanwhile: S3 has it
            except OSError as exc:
                raise StorageError(f"cannot read {entry.path}: {exc.strerror or exc}") from exc
        return self._remote.get(key)

    def is_empty(self) -> bool:
        return not self._queue.has_pending() and self._remote.is_empty()

    def clear(self) -> None:
        """Drop every pending object (and kept copy), then delete everything under the S3 prefix."""
        with self._commit_lock:
            self._queue.discard_all()
            self._journal.clear()
        self._remote.clear()

    def close(self) -> None:
        """Wait up to ``upload_wait_s`` for the uploads (plus at most one request's timeout), then stop; raises
        StorageError if uploads failed for good. What was not uploaded stays journaled (``upload_stats().state`` is
        ``pending_uploads``, not an error). Idempotent."""
        if self._closed:
            return
        self._closed = True
        try:
            self._queue.wait(self._settings.upload_wait_s)
        finally:
            self._queue.close()
            self._upload_client.close()
            self._remote.close()
            stats = self._queue.stats()
            removed = self._journal.close(remove_if_empty=stats.pending_objects == 0)
        log.info(
            "staged_store_closed",
            store=self.url,
            state=stats.state.value,
            pending_objects=stats.pending_objects,
            pending_bytes=stats.pending_bytes,
            uploaded_objects=stats.uploaded_objects,
            uploaded_bytes=stats.uploaded_bytes,
            failed_attempts=stats.failed_attempts,
            staging_folder=None if removed else str(self._journal.root),
        )
        self._raise_if_failed()

    # -- internals ------------------------------------------------------------------------------------------------

    def _check(self, action: str) -> None:
        if self._closed:
            raise StreamClosedError(f"cannot {action} {self.url}: the store is closed.")
        self._raise_if_failed()

    def _raise_if_failed(self) -> None:
        error = self._queue.error
        if error is not None:
            raise StorageError(
                f"uploads to {self.url} failed: {error} The objects not uploaded stay in {self._journal.root}."
            ) from error

    def _commit_data(self, working: Path, key: str) -> None:
        self._commit(working, key, ObjectKind.DATA)

    def _commit(self, working: Path, key: str, kind: ObjectKind) -> None:
        with self._commit_lock:
            self._queue.add(self._journal.commit(working, key, kind))

    def _upload(self, entry: StagedObject, stop: threading.Event) -> UploadResult:
        return self._uploader.upload(entry.path, self.location.object_key(entry.key), stop)

    def _retire(self, entry: StagedObject, uploaded: bool) -> None:
        if uploaded and self._settings.keep_staged:
            self._journal.keep(entry)
        else:
            self._journal.remove(entry)


def resume_uploads(
    staging_dir: Path | str, settings: S3Settings, *, wait_s: float | None = None
) -> dict[str, UploadStats]:
    """Upload what every store in ``staging_dir`` left pending (a crash, or a close that ran out of time), with
    ``settings`` (endpoint, limits); waits up to ``wait_s`` (default ``settings.upload_wait_s``) per store.
    Idempotent: a store with nothing pending only has its folder removed. Returns each store's stats by URL; raises
    StorageError after trying every store if some could not be resumed (in use, access denied, ...)."""
    resumed = dataclasses.replace(
        settings,
        staging_dir=str(Path(staging_dir).absolute()),
        upload_wait_s=settings.upload_wait_s if wait_s is None else wait_s,
    )
    results: dict[str, UploadStats] = {}
    problems: list[str] = []
    for location in staged_locations(staging_dir):
        store: StagedS3Store | None = None
        try:
            store = StagedS3Store(location, resumed)
            store.close()
        except StorageError as exc:
            problems.append(f"{location.url}: {exc}")
            log.error("staged_resume_failed", store=location.url, error=str(exc))
        if store is not None:
            results[location.url] = store.upload_stats()
    if problems:
        raise StorageError(f"{len(problems)} staged stores could not be resumed: " + "; ".join(problems))
    return results
