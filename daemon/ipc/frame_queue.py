"""The queue between the camera and the sender: bounded in bytes, dropping (or, for simulators, blocking) when full.

Design notes:
- The camera thread must never wait for storage: in :attr:`QueueMode.DROP` a ``put`` that does not fit returns
  :attr:`PutResult.FULL` at once and is counted (``dropped_full``). :attr:`QueueMode.BLOCK` exists for simulated
  cameras, which can wait: ``put`` waits up to its timeout for room, then drops the same way.
- An item larger than ``max_bytes`` can never fit: it is dropped as full in both modes.
- ``close()`` refuses further puts (:attr:`PutResult.CLOSED`, not counted here) and wakes blocked putters; what is
  queued can still be taken, or all of it at once with ``drain()``.
- The queue can share its owner's re-entrant lock (``lock=``): the sender then moves a frame from the queue to its
  in-flight books in one critical section, so its stats snapshots always balance.
- ``on_ready`` is called (outside the queue's own critical section) when a put makes the queue non-empty: the
  sender uses it to wake its poller.
"""

from __future__ import annotations

import collections
import enum
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from daemon.errors import ConfigError


class HasNbytes(Protocol):
    @property
    def nbytes(self) -> int: ...


T = TypeVar("T", bound=HasNbytes)


class QueueMode(enum.Enum):
    DROP = "drop"  # a full queue drops the new frame at once (real cameras)
    BLOCK = "block"  # a full queue makes the putter wait, up to a timeout (simulated cameras)


class PutResult(enum.Enum):
    ACCEPTED = "accepted"
    FULL = "full"  # dropped for lack of room (counted)
    CLOSED = "closed"  # the queue no longer accepts items


@dataclass(frozen=True, slots=True)
class QueueStats:
    frames: int
    nbytes: int
    max_bytes: int
    max_frames: int | None
    accepted: int  # items ever accepted
    dropped_full: int  # items refused for lack of room
    peak_nbytes: int


class FrameQueue(Generic[T]):
    """A FIFO bounded by total bytes (and optionally by item count)."""

    def __init__(
        self,
        max_bytes: int,
        *,
        max_frames: int | None = None,
        mode: QueueMode = QueueMode.DROP,
        block_timeout_s: float = 10.0,
        lock: threading.RLock | None = None,
        on_ready: Callable[[], None] | None = None,
    ) -> None:
        if not isinstance(max_bytes, int) or max_bytes < 1:
            raise ConfigError(f"max_bytes must be an integer >= 1. Got {max_bytes!r} instead.")
        if max_frames is not None and (not isinstance(max_frames, int) or max_frames < 1):
            raise ConfigError(f"max_frames must be None or an integer >= 1. Got {max_frames!r} instead.")
        if not block_timeout_s > 0:
            raise ConfigError(f"block_timeout_s must be > 0 seconds. Got {block_timeout_s!r} instead.")
        self._max_bytes = max_bytes
        self._max_frames = max_frames
        self._mode = QueueMode(mode)
        self._block_timeout_s = block_timeout_s
        self._lock = lock if lock is not None else threading.RLock()
        self._not_full = threading.Condition(self._lock)
        self._not_empty = threading.Condition(self._lock)
        self._on_ready = on_ready
        self._items: collections.deque[T] = collections.deque()
        self._nbytes = 0
        self._peak = 0
        self._accepted = 0
        self._dropped = 0
        self._closed = False

    @property
    def mode(self) -> QueueMode:
        return self._mode

    @property
    def closed(self) -> bool:
        return self._closed

    def __len__(self) -> int:
        return len(self._items)

    def _fits(self, nbytes: int) -> bool:
        if self._max_frames is not None and len(self._items) >= self._max_frames:
            return False
        return self._nbytes + nbytes <= self._max_bytes

    def put(self, item: T, timeout: float | None = None) -> PutResult:
        """Queue ``item``; in BLOCK mode wait up to ``timeout`` (default: the queue's ``block_timeout_s``)."""
        nbytes = item.nbytes
        with self._lock:
            if self._mode is QueueMode.BLOCK and nbytes <= self._max_bytes:
                self._wait_for_room(nbytes, self._block_timeout_s if timeout is None else timeout)
            if self._closed:
                return PutResult.CLOSED
            if not self._fits(nbytes):
                self._dropped += 1
                return PutResult.FULL
            was_empty = not self._items
            self._items.append(item)
            self._nbytes += nbytes
            self._peak = max(self._peak, self._nbytes)
            self._accepted += 1
            self._not_empty.notify()
        if was_empty and self._on_ready is not None:
            self._on_ready()
        return PutResult.ACCEPTED

    def _wait_for_room(self, nbytes: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not self._closed and not self._fits(nbytes):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            self._not_full.wait(remaining)

    def head_nbytes(self) -> int | None:
        """The size of the oldest item (the next ``get``), or None when the queue is empty."""
        with self._lock:
            return self._items[0].nbytes if self._items else None

    def get_nowait(self) -> T | None:
        """The oldest item, or None when the queue is empty."""
        with self._lock:
            if not self._items:
                return None
            item = self._items.popleft()
            self._nbytes -= item.nbytes
            self._not_full.notify_all()
            return item

    def get(self, timeout: float) -> T | None:
        """The oldest item, waiting up to ``timeout`` seconds; None if none came (or the queue is closed and empty)."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while not self._items and not self._closed:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                self._not_empty.wait(remaining)
            return self.get_nowait()

    def close(self) -> None:
        """Refuse further puts and wake every blocked putter and getter. Idempotent."""
        with self._lock:
            self._closed = True
            self._not_full.notify_all()
            self._not_empty.notify_all()

    def drain(self) -> list[T]:
        """Take every queued item at once (oldest first)."""
        with self._lock:
            items = list(self._items)
            self._items.clear()
            self._nbytes = 0
            self._not_full.notify_all()
            return items

    def stats(self) -> QueueStats:
        with self._lock:
            return QueueStats(
                frames=len(self._items),
                nbytes=self._nbytes,
                max_bytes=self._max_bytes,
                max_frames=self._max_frames,
                accepted=self._accepted,
                dropped_full=self._dropped,
                peak_nbytes=self._peak,
            )
