"""Run metrics: the figures of one ``run_metrics`` event, computed from cumulative counters sampled over time.

A run's :class:`RunMeter` samples its counters every supervisor tick (for the acknowledgement latency) and, every
``metrics_interval_s``, turns two :class:`Sample` s into rates (:func:`interval_metrics`): frames/s and MB/s read
from the cameras and acknowledged stored, queue depth, drops by reason, the acknowledgement latency, and the
resident memory of the run's process and of its worker.

Design notes:
- Storage latency is measured on the acquisition side, from stored acknowledgements (:class:`AckLatency`): frames
  are queued, sent and stored in one order, so the n-th frame stored is the n-th frame queued; the latency of
  the newest acknowledgement is "now" minus when the queued count first reached it (to a tick's resolution).
- Bytes written are known exactly only at the end (the worker's FINAL summary). While running, a local store's
  size on disk (:func:`tree_bytes`) gives the written rate and an estimated compression ratio (raw bytes
  acknowledged / bytes on disk: slightly low while chunks of unacknowledged frames are already on disk). For an
  S3 store both are None until the summary.
- RSS comes from ``/proc/PID/status`` (Linux); None where it cannot be read.
"""

from __future__ import annotations

import collections
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from daemon.ipc.stream_status import SenderStats
from daemon.run_books import CameraBooks
from daemon.storage.s3_names import is_s3_url

MB = 1e6


def process_rss_bytes(pid: int | None = None) -> int | None:
    """Resident memory of process ``pid`` (this process by default) from /proc, or None if unavailable."""
    path = Path("/proc") / ("self" if pid is None else str(pid)) / "status"
    try:
        text = path.read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("VmRSS:"):
            parts = line.split()
            if len(parts) >= 2 and parts[1].isdigit():
                return int(parts[1]) * 1024
    return None


def tree_bytes(root: str | os.PathLike[str]) -> int | None:
    """Total size of the files under ``root`` (None if it cannot be read); files vanishing meanwhile are skipped."""
    total = 0
    stack = [os.fspath(root)]
    try:
        while stack:
            with os.scandir(stack.pop()) as entries:
                total += sum(_entry_bytes(entry, stack) for entry in entries)
    except FileNotFoundError:
        return 0
    except OSError:
        return None
    return total


def _entry_bytes(entry: os.DirEntry[str], folders: list[str]) -> int:
    """A file's size (0 for a folder, which is pushed on ``folders``, or for a file renamed away meanwhile)."""
    try:
        if entry.is_dir(follow_symlinks=False):
            folders.append(entry.path)
        elif entry.is_file(follow_symlinks=False):
            return entry.stat(follow_symlinks=False).st_size
    except FileNotFoundError:
        pass  # renamed into place or removed while we looked: it is counted under its new name, or gone
    return 0


class AckLatency:
    """Latency of stored acknowledgements, from (time, frames queued) samples (see the module notes)."""

    def __init__(self, max_samples: int = 100_000) -> None:
        self._samples: collections.deque[tuple[float, int]] = collections.deque(maxlen=max_samples)
        self._stored = 0
        self._worst: float | None = None

    def sample(self, now: float, queued: int, stored: int) -> None:
        """Record the cumulative ``queued`` and ``stored`` frame counts at ``now``."""
        if not self._samples or self._samples[-1][1] != queued:
            self._samples.append((now, queued))
        if stored > self._stored:
            self._stored = stored
            while len(self._samples) > 1 and self._samples[0][1] < stored:
                self._samples.popleft()  # counts only grow: a sample with fewer queued than stored is done with
            first_time, first_queued = self._samples[0]
            if first_queued >= stored:
                latency = max(0.0, now - first_time)
                self._worst = latency if self._worst is None else max(self._worst, latency)

    def take_worst(self) -> float | None:
        """The worst latency seen since the last call (None if nothing new was stored)."""
        worst, self._worst = self._worst, None
        return worst


@dataclass(frozen=True, slots=True)
class Sample:
    """Cumulative counters of a run at one instant."""

    time: float
    frames_read: int
    bytes_read: int
    frames_stored: int
    bytes_stored: int
    store_bytes: int | None  # a local store's size on disk (None for S3)


def _rate(now: float, before: float, dt: float) -> float:
    return round((now - before) / dt, 3) if dt > 0 else 0.0


def interval_metrics(
    previous: Sample,
    current: Sample,
    *,
    queue: Mapping[str, int],
    drops: Mapping[str, int],
    cameras: Mapping[str, Mapping[str, Any]],
    ack_latency_s: float | None,
    worker_pid: int | None,
) -> dict[str, Any]:
    """The fields of one ``run_metrics`` event (see the module notes)."""
    dt = current.time - previous.time
    written: float | None = None
    ratio: float | None = None
    if current.store_bytes is not None and previous.store_bytes is not None:
        written = _rate(current.store_bytes / MB, previous.store_bytes / MB, dt)
        if current.store_bytes > 0:
            ratio = round(current.bytes_stored / current.store_bytes, 3)
    return {
        "interval_s": round(dt, 3),
        "frames_in_per_s": _rate(current.frames_read, previous.frames_read, dt),
        "frames_stored_per_s": _rate(current.frames_stored, previous.frames_stored, dt),
        "mb_in_per_s": _rate(current.bytes_read / MB, previous.bytes_read / MB, dt),
        "mb_stored_per_s": _rate(current.bytes_stored / MB, previous.bytes_stored / MB, dt),
        "mb_written_per_s": written,
        "compression_ratio": ratio,
        "frames_read": current.frames_read,
        "frames_stored": current.frames_stored,
        **queue,
        "drops": dict(drops),
        "ack_latency_s": None if ack_latency_s is None else round(ack_latency_s, 3),
        "rss_bytes": process_rss_bytes(),
        "worker_rss_bytes": None if worker_pid is None else process_rss_bytes(worker_pid),
        "cameras": {name: dict(fields) for name, fields in cameras.items()},
    }


class RunMeter:
    """The metrics of one run: ``tick`` every supervisor turn, ``interval`` every ``metrics_interval_s``."""

    def __init__(self, store_path: str) -> None:
        self._store = store_path if not is_s3_url(store_path) else None
        self._latency = AckLatency()
        self._previous: Sample | None = None
        self._reads: dict[str, int] = {}

    def sample(self, now: float, books: Sequence[CameraBooks], stats: SenderStats) -> Sample:
        return Sample(
            time=now,
            frames_read=sum(b.read for b in books),
            bytes_read=sum(b.bytes_read for b in books),
            frames_stored=stats.frames_stored,
            bytes_stored=stats.bytes_stored,
            store_bytes=None if self._store is None else tree_bytes(self._store),
        )

    def tick(self, now: float, books: Sequence[CameraBooks], stats: SenderStats) -> None:
        if self._previous is None:
            self._previous = self.sample(now, books, stats)
            self._reads = {b.name: b.read for b in books}
        self._latency.sample(now, sum(b.queued for b in books), stats.frames_stored)

    def interval(
        self, now: float, books: Sequence[CameraBooks], stats: SenderStats, worker_pid: int | None
    ) -> dict[str, Any]:
        """The fields of a ``run_metrics`` event since the last call (or the first tick)."""
        current = self.sample(now, books, stats)
        previous = self._previous if self._previous is not None else current
        dt = current.time - previous.time
        cameras = {
            b.name: {
                "frames_read": b.read,
                "delivered": b.delivered,
                "fps": _rate(b.read, self._reads.get(b.name, 0), dt),
            }
            for b in books
        }
        queue = {
            "queue_frames": stats.queued_frames,
            "queue_bytes": stats.queued_bytes,
            "unacked_frames": stats.unacked_frames,
        }
        fields = interval_metrics(
            previous,
            current,
            queue=queue,
            drops=stats.balance.dropped.as_dict(),
            cameras=cameras,
            ack_latency_s=self._latency.take_worst(),
            worker_pid=worker_pid,
        )
        self._previous = current
        self._reads = {b.name: b.read for b in books}
        return fields
