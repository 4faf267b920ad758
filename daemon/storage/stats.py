"""Counters of a stream for metrics: a thread-safe :class:`Counters` and its frozen :class:`StreamStats` snapshot."""

from __future__ import annotations

import threading
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class StreamStats:
    """What a stream did so far (all arrays together)."""

    frames_appended: int
    frames_stored: int
    bytes_in: int  # frame bytes appended
    bytes_written: int  # bytes written to the store (chunks, shard indexes, metadata)
    chunks_written: int
    objects_finalized: int  # shards (or plain chunks) made visible
    objects_pending: int = 0  # objects queued for (or in) finalization now: fsync lag, bounded
    objects_pending_peak: int = 0  # the most ever queued at once


class Counters:
    """Byte and chunk counters updated by worker threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.bytes_in = 0
        self.bytes_written = 0
        self.chunks_written = 0
        self.objects_finalized = 0

    def add(self, *, bytes_in: int = 0, bytes_written: int = 0, chunks: int = 0, objects: int = 0) -> None:
        with self._lock:
            self.bytes_in += bytes_in
            self.bytes_written += bytes_written
            self.chunks_written += chunks
            self.objects_finalized += objects

    def snapshot(
        self, frames_appended: int, frames_stored: int, objects_pending: int = 0, objects_pending_peak: int = 0
    ) -> StreamStats:
        with self._lock:
            return StreamStats(
                frames_appended=frames_appended,
                frames_stored=frames_stored,
                objects_pending=objects_pending,
                objects_pending_peak=objects_pending_peak,
                bytes_in=self.bytes_in,
                bytes_written=self.bytes_written,
                chunks_written=self.chunks_written,
                objects_finalized=self.objects_finalized,
            )
