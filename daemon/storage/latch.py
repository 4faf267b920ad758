"""The first failure of a stream, shared by the appending thread, the workers and the finalizer (sticky errors).

Background threads :meth:`ErrorLatch.set` what they hit; the appending thread checks :attr:`ErrorLatch.error`
before each append and while it waits, so a failure stops the stream at the next frame boundary.
"""

from __future__ import annotations

import threading

from daemon.errors import StorageError


class ErrorLatch:
    """Holds the first error set; later ones are ignored (they are usually consequences of the first)."""

    def __init__(self, where: str) -> None:
        self._where = where
        self._lock = threading.Lock()
        self._error: StorageError | None = None

    @property
    def error(self) -> StorageError | None:
        return self._error

    def set(self, exc: BaseException) -> bool:
        """Record ``exc`` (wrapped in a StorageError unless it is one) if it is the first; True if it was."""
        if not isinstance(exc, StorageError):
            wrapped = StorageError(f"writing {self._where} failed: {exc!r}")
            wrapped.__cause__ = exc
            exc = wrapped
        with self._lock:
            if self._error is not None:
                return False
            self._error = exc
            return True
