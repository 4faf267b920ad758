"""Frame accounting: why frames were dropped, the stream's balance sheet, and counted junk.

Design notes:
- Every frame the acquisition side accounts for is *delivered*; each ends either *stored* (acknowledged by a worker
  after the storage engine made it durable) or *dropped* with one :class:`DropReason`, and until then it is *in
  flight* (queued or sent and not yet acknowledged). :class:`StreamBalance` states the invariant
  ``delivered == stored + dropped + in_flight``; at the end of a stream ``in_flight`` is 0.
- Who counts what: the pipeline counts ``camera_gap`` and ``incomplete`` (it records them on the sender, so one
  balance covers the stream); the frame queue counts ``queue_full``; the sender counts ``worker_lost`` and
  ``aborted`` (queued frames discarded by an abort). ``storage_error`` is the run's classification of frames the
  worker could not store because its storage failed (the sender itself counts those ``worker_lost``).
- :class:`ThrottledCounter` counts events (malformed messages, frames reported lost) by reason and logs the
  first ten, then every power of ten, so a flood of junk cannot flood the journal.
"""

from __future__ import annotations

import enum
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any


class DropReason(enum.Enum):
    """Why a frame never reached storage."""

    CAMERA_GAP = "camera_gap"  # the camera's frame ids jumped: frames lost before they reached the host
    INCOMPLETE = "incomplete"  # the device delivered a partial buffer and the pipeline discarded it
    QUEUE_FULL = "queue_full"  # the bounded queue between camera and sender had no room
    WORKER_LOST = "worker_lost"  # the worker died, left, or reported it could not store the frame
    ABORTED = "aborted"  # discarded from the queue by an abort (never sent to the worker)
    STORAGE_ERROR = "storage_error"  # the worker's storage failed, so the frame was not stored


@dataclass(frozen=True, slots=True)
class DropCounts:
    """Frames dropped, by reason."""

    camera_gap: int = 0
    incomplete: int = 0
    queue_full: int = 0
    worker_lost: int = 0
    aborted: int = 0
    storage_error: int = 0

    @classmethod
    def of(cls, counts: Mapping[DropReason, int]) -> DropCounts:
        return cls(**{reason.value: int(counts.get(reason, 0)) for reason in DropReason})

    def __getitem__(self, reason: DropReason) -> int:
        value: int = getattr(self, reason.value)
        return value

    @property
    def total(self) -> int:
        return sum(self[reason] for reason in DropReason)

    def as_dict(self) -> dict[str, int]:
        """``{reason: count}`` for every reason (JSON-ready)."""
        return {reason.value: getattr(self, reason.value) for reason in DropReason}


@dataclass(frozen=True, slots=True)
class StreamBalance:
    """The balance sheet of one stream, taken at one instant."""

    delivered: int
    stored: int
    in_flight: int
    dropped: DropCounts

    @property
    def balanced(self) -> bool:
        """``delivered == stored + dropped + in_flight``."""
        return self.delivered == self.stored + self.dropped.total + self.in_flight


class ThrottledCounter:
    """Counts events by reason; logs the 1st-10th, then every power of ten."""

    def __init__(self, log: Any, event: str) -> None:
        self._log = log
        self._event = event
        self._lock = threading.Lock()
        self._counts: dict[str, int] = {}
        self._total = 0

    def count(self, reason: str, **fields: Any) -> None:
        with self._lock:
            self._counts[reason] = self._counts.get(reason, 0) + 1
            self._total += 1
            total = self._total
        if total <= 10 or _is_power_of_ten(total):
            self._log.warning(self._event, reason=reason, total=total, **fields)

    @property
    def total(self) -> int:
        return self._total

    def snapshot(self) -> Mapping[str, int]:
        with self._lock:
            return MappingProxyType(dict(self._counts))


def _is_power_of_ten(n: int) -> bool:
    while n % 10 == 0 and n > 1:
        n //= 10
    return n == 1
