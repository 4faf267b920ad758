"""The upload queue: background threads that upload a staged store's pending objects, in a safe order, retrying.

Design notes:
- Objects arrive with increasing ``seq`` (:meth:`UploadQueue.add`, in commit order). A worker takes the lowest
  ``seq`` it may start: a ``data`` object at any time, a ``meta`` object only when every object before it is
  done (so metadata never claims data that is not in S3 yet), and never an object whose key has an older version
  still uploading (so an old version cannot land after a new one).
- A newer version of a key drops the older one if that has not started (superseded: it is never uploaded).
- Retries: a RETRY outcome waits (0.5 s doubling up to ``retry_max_s``) and tries again, without end while the
  queue runs; each attempt is bounded by the client's timeouts. Objects keep arriving meanwhile (bounded only by
  local disk). A FAILED outcome (access denied, no bucket) is sticky: :attr:`UploadQueue.error` is set, the
  workers stop, and every object stays pending (journaled) for a later resume.
- :meth:`close` stops the workers after their current request; what was not uploaded stays pending. Every wait is
  on one condition variable; nothing polls.
"""

from __future__ import annotations

import enum
import threading
from collections.abc import Callable
from dataclasses import dataclass

from daemon.errors import StorageError
from daemon.log import get_logger
from daemon.storage.s3_upload import Outcome, UploadResult
from daemon.storage.upload_journal import ObjectKind, StagedObject

RETRY_INITIAL_S = 0.5
RETRY_MAX_S = 30.0

log = get_logger(__name__)

Upload = Callable[[StagedObject, threading.Event], UploadResult]
Retire = Callable[[StagedObject, bool], None]  # (object, uploaded): delete or keep its local file


class UploadState(enum.Enum):
    ACTIVE = "active"  # running: uploading what is pending, or waiting for more
    COMPLETE = "complete"  # closed with every object uploaded
    PENDING_UPLOADS = "pending_uploads"  # closed before every object was uploaded: the rest stays journaled
    FAILED = "failed"  # a permanent error stopped the uploads: everything not uploaded stays journaled


@dataclass(frozen=True, slots=True)
class UploadStats:
    """A snapshot of a staged store's uploads."""

    state: UploadState
    pending_objects: int
    pending_bytes: int
    uploaded_objects: int
    uploaded_bytes: int
    superseded_objects: int  # older versions replaced before they were uploaded
    failed_attempts: int
    error: str | None = None


class UploadQueue:
    """Uploads objects with ``upload`` on ``threads`` threads; ``retire`` deletes (or keeps) each one's file."""

    def __init__(
        self,
        upload: Upload,
        retire: Retire,
        *,
        threads: int,
        name: str,
        retry_initial_s: float = RETRY_INITIAL_S,
        retry_max_s: float = RETRY_MAX_S,
    ) -> None:
        self._upload = upload
        self._retire = retire
        self._name = name
        self._retry = (retry_initial_s, retry_max_s)
        self._cond = threading.Condition()
        self._pending: dict[int, StagedObject] = {}  # seq -> object, in seq order: queued and in flight
        self._in_flight: dict[int, StagedObject] = {}
        self._busy_keys: set[str] = set()
        self._latest: dict[str, StagedObject] = {}  # key -> its newest pending version
        self._cancelled: set[int] = set()
        self._last_seq = 0
        self._pending_bytes = 0
        self._uploaded = [0, 0]  # objects, bytes
        self._superseded = 0
        self._failed_attempts = 0
        self._error: StorageError | None = None
        self._stop = threading.Event()
        self._closed = False
        self._threads = [
            threading.Thread(target=self._work, name=f"acqd-upload-{i}", daemon=True) for i in range(threads)
        ]
        for thread in self._threads:
            thread.start()

    # -- producers ------------------------------------------------------------------------------------------------

    def add(self, entry: StagedObject) -> None:
        """Queue ``entry`` (``seq`` above every object added before); drops an older version not yet started."""
        with self._cond:
            if entry.seq <= self._last_seq:
                raise ValueError(f"seq must increase: {entry.seq} after {self._last_seq}.")
            self._last_seq = entry.seq
            older = self._latest.get(entry.key)
            superseded = older if older is not None and older.seq not in self._in_flight else None
            if superseded is not None:
                self._forget(superseded)
                self._superseded += 1
            self._pending[entry.seq] = entry
            self._latest[entry.key] = entry
            self._pending_bytes += entry.size
            self._cond.notify_all()
        if superseded is not None:
            self._retire(superseded, False)

    def staged(self, key: str) -> StagedObject | None:
        """The newest version of ``key`` not yet uploaded (its file may vanish once it is)."""
        with self._cond:
            return self._latest.get(key)

    def has_pending(self) -> bool:
        with self._cond:
            return bool(self._pending)

    @property
    def error(self) -> StorageError | None:
        return self._error

    def wait(self, timeout_s: float | None) -> bool:
        """Wait until nothing is pending (True), the uploads failed, or ``timeout_s`` passed (False)."""
        with self._cond:
            self._cond.wait_for(lambda: not self._pending or self._error is not None or self._stop.is_set(), timeout_s)
            return not self._pending

    def discard_all(self) -> None:
        """Forget every pending object (their files are the caller's to delete); waits for uploads under way."""
        with self._cond:
            for entry in list(self._pending.values()):
                if entry.seq in self._in_flight:
                    self._cancelled.add(entry.seq)
                else:
                    self._forget(entry)
            self._cond.notify_all()  # wakes the workers waiting to retry a discarded object
            self._cond.wait_for(lambda: not self._in_flight)

    def close(self) -> None:
        """Stop the workers after their current request; what is pending stays so. Idempotent."""
        if self._closed:
            return
        self._closed = True
        with self._cond:
            self._stop.set()
            self._cond.notify_all()
        for thread in self._threads:
            thread.join()

    def stats(self) -> UploadStats:
        with self._cond:
            if self._error is not None:
                state = UploadState.FAILED
            elif not self._closed:
                state = UploadState.ACTIVE
            else:
                state = UploadState.PENDING_UPLOADS if self._pending else UploadState.COMPLETE
            return UploadStats(
                state=state,
                pending_objects=len(self._pending),
                pending_bytes=self._pending_bytes,
                uploaded_objects=self._uploaded[0],
                uploaded_bytes=self._uploaded[1],
                superseded_objects=self._superseded,
                failed_attempts=self._failed_attempts,
                error=None if self._error is None else str(self._error),
            )

    # -- workers --------------------------------------------------------------------------------------------------

    def _work(self) -> None:
        while (entry := self._take()) is not None:
            self._upload_guarded(entry)

    def _upload_guarded(self, entry: StagedObject) -> None:
        try:
            self._upload_until_done(entry)
        except Exception as exc:  # a bug must not leave the object in flight forever: it fails the queue
            error = StorageError(f"upload of {entry.key} to {self._name} failed unexpectedly: {exc!r}")
            error.__cause__ = exc
            self._fail(entry, error)

    def _take(self) -> StagedObject | None:
        with self._cond:
            while not self._stop.is_set() and self._error is None:
                entry = self._next_startable()
                if entry is not None:
                    self._in_flight[entry.seq] = entry
                    self._busy_keys.add(entry.key)
                    return entry
                self._cond.wait()
            return None

    def _next_startable(self) -> StagedObject | None:
        """The lowest-seq object that may start (called with the lock held). ``_pending`` is in seq order and holds
        the objects in flight too, so its first seq is the oldest object not done."""
        first = next(iter(self._pending), None)
        for seq, entry in self._pending.items():
            if seq in self._in_flight or entry.key in self._busy_keys:
                continue
            if entry.kind is ObjectKind.META and seq != first:
                continue  # metadata waits for every object before it
            return entry
        return None

    def _upload_until_done(self, entry: StagedObject) -> None:
        delay, delay_max = self._retry
        failures = 0
        while True:
            result = self._upload(entry, self._stop)
            if result.outcome is Outcome.UPLOADED:
                self._done(entry, uploaded=True)
                return
            failures += 1
            error = result.error or StorageError(f"upload of {entry.key} failed.")
            with self._cond:
                self._failed_attempts += 1
            if result.outcome is Outcome.FAILED:
                self._fail(entry, error)
                return
            if failures & (failures - 1) == 0:  # the 1st, 2nd, 4th, 8th... failure of this object
                log.warning("staged_upload_retry", store=self._name, key=entry.key, attempt=failures, error=str(error))
            if self._pause(entry, delay):
                self._done(entry, uploaded=False)
                return
            delay = min(delay * 2, delay_max)

    def _pause(self, entry: StagedObject, delay: float) -> bool:
        """Wait ``delay`` before the next attempt; True if the queue stops or ``entry`` was discarded meanwhile."""

        def give_up() -> bool:
            return self._stop.is_set() or entry.seq in self._cancelled

        with self._cond:
            return self._cond.wait_for(give_up, delay)

    def _done(self, entry: StagedObject, *, uploaded: bool) -> None:
        """An attempt sequence ended: uploaded (retire it), cancelled (forget it) or stopped (keep it pending)."""
        if uploaded:
            try:
                self._retire(entry, True)
            except StorageError as exc:
                self._fail(entry, exc)
                return
        with self._cond:
            del self._in_flight[entry.seq]
            self._busy_keys.discard(entry.key)
            if uploaded:
                self._uploaded[0] += 1
                self._uploaded[1] += entry.size
            if uploaded or entry.seq in self._cancelled:
                self._cancelled.discard(entry.seq)
                self._forget(entry)
            self._cond.notify_all()

    def _fail(self, entry: StagedObject, error: StorageError) -> None:
        with self._cond:
            self._in_flight.pop(entry.seq, None)
            self._busy_keys.discard(entry.key)
            if entry.seq in self._cancelled:
                self._cancelled.discard(entry.seq)
                self._forget(entry)
            if self._error is None:
                self._error = error
                log.error("staged_upload_failed", store=self._name, key=entry.key, error=str(error))
            self._cond.notify_all()

    def _forget(self, entry: StagedObject) -> None:
        """Drop ``entry`` from the pending set (lock held)."""
        del self._pending[entry.seq]
        self._pending_bytes -= entry.size
        if self._latest.get(entry.key) is entry:
            del self._latest[entry.key]
