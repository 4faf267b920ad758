"""A run's books: what each camera delivered and where every frame ended (stored, or dropped with a reason).

Design notes:
- One :class:`CameraBooks` per camera, written only by that camera's reader thread (plain integers: a reader
  of a snapshot from another thread may see one counter a frame ahead of another, never a torn value). Every frame
  read is counted exactly once: ``incomplete`` (dropped by policy), ``queue_full``, ``worker_lost`` (refused by
  a sender that already lost its worker) or ``queued``; frames lost upstream are ``camera_gap``.
- What happened to queued frames is known from the sender's books at the end (:func:`settle`): frames the sender
  lists lost (by key), frames discarded by an abort (by key), and the rest stored. A loss is ``storage_error``
  when the worker reported a storage failure in its FINAL summary, else ``worker_lost``.
- The run's books and the sender's are kept independently; :func:`settle` checks that they agree (delivered,
  stored, nothing in flight) and that the worker's own ``frames_stored`` per key agrees when it finished, so
  ``balanced`` in the summary is a real check, not a tautology.
"""

from __future__ import annotations

import collections
import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from daemon.ipc.accounting import DropCounts, DropReason
from daemon.ipc.stream_status import SenderStats


@dataclass(slots=True)
class CameraBooks:
    """Counters of one camera (see the module notes); ``delivered`` = read + lost upstream."""

    name: str
    key: str
    read: int = 0
    bytes_read: int = 0
    camera_gap: int = 0
    incomplete: int = 0  # dropped by the incomplete: drop policy
    incomplete_stored: int = 0  # delivered incomplete and queued anyway (incomplete: store)
    queue_full: int = 0
    worker_lost: int = 0  # refused at offer: the worker was already lost
    queued: int = 0
    bytes_queued: int = 0

    @property
    def delivered(self) -> int:
        return self.read + self.camera_gap

    def snapshot(self) -> CameraBooks:
        return dataclasses.replace(self)


@dataclass(frozen=True, slots=True)
class CameraResult:
    """Where one camera's frames ended."""

    name: str
    key: str
    delivered: int
    stored: int
    dropped: DropCounts
    bytes_stored: int

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "delivered": self.delivered,
            "stored": self.stored,
            "dropped": self.dropped.as_dict(),
            "bytes_stored": self.bytes_stored,
        }


@dataclass(frozen=True, slots=True)
class Settlement:
    """The books closed: per camera results, and whether they agree with the sender's and the worker's."""

    cameras: tuple[CameraResult, ...]
    balanced: bool
    problems: tuple[str, ...] = field(default=())

    @property
    def delivered(self) -> int:
        return sum(c.delivered for c in self.cameras)

    @property
    def stored(self) -> int:
        return sum(c.stored for c in self.cameras)

    @property
    def bytes_stored(self) -> int:
        return sum(c.bytes_stored for c in self.cameras)

    @property
    def dropped(self) -> DropCounts:
        totals: collections.Counter[DropReason] = collections.Counter()
        for camera in self.cameras:
            for reason in DropReason:
                totals[reason] += camera.dropped[reason]
        return DropCounts.of(totals)


def settle(
    books: Iterable[CameraBooks],
    stats: SenderStats,
    aborted: Mapping[str, int],
    worker_summary: Mapping[str, Any] | None,
    storage_failed: bool,
) -> Settlement:
    """Close the books once nothing is in flight (see the module notes)."""
    lost_by_key = collections.Counter(frame.key for frame in stats.lost)
    lost_reason = DropReason.STORAGE_ERROR if storage_failed else DropReason.WORKER_LOST
    results = []
    for book in books:
        lost = lost_by_key.get(book.key, 0)
        discarded = aborted.get(book.key, 0)
        stored = book.queued - lost - discarded
        drops = {
            DropReason.CAMERA_GAP: book.camera_gap,
            DropReason.INCOMPLETE: book.incomplete,
            DropReason.QUEUE_FULL: book.queue_full,
            DropReason.WORKER_LOST: book.worker_lost,
            DropReason.ABORTED: discarded,
        }
        drops[lost_reason] = drops.get(lost_reason, 0) + lost
        per_frame = book.bytes_queued / book.queued if book.queued else 0
        results.append(
            CameraResult(book.name, book.key, book.delivered, stored, DropCounts.of(drops), round(stored * per_frame))
        )
    problems = _cross_check(results, stats, worker_summary)
    return Settlement(tuple(results), not problems, tuple(problems))


def _cross_check(
    results: list[CameraResult], stats: SenderStats, worker_summary: Mapping[str, Any] | None
) -> list[str]:
    balance = stats.balance
    problems = []
    delivered_to_sender = sum(r.delivered for r in results)
    if balance.delivered != delivered_to_sender:
        problems.append(f"the sender counts {balance.delivered} frames delivered, the cameras {delivered_to_sender}")
    stored = sum(r.stored for r in results)
    if balance.stored != stored:
        problems.append(f"the sender counts {balance.stored} frames stored, the run {stored}")
    if balance.in_flight:
        problems.append(f"{balance.in_flight} frames are still in flight")
    if not balance.balanced:
        problems.append(f"the sender's balance does not hold: {balance}")
    if any(r.stored < 0 for r in results):
        problems.append("a camera has a negative stored count")
    reported = worker_summary.get("frames_stored") if worker_summary else None
    if isinstance(reported, Mapping):
        for result in results:
            count = reported.get(result.key, 0)
            if count != result.stored:
                problems.append(f"the worker stored {count} frames of {result.key!r}, the run counts {result.stored}")
    return problems
