"""The sender's books: which frames were sent to the worker and not yet acknowledged, stored, or lost.

Design notes:
- Sequence numbers are handed out here, 0, 1, 2, ... in send order, so they are contiguous on a worker link.
- Acknowledgements are cumulative (STORED ``next_seq``: every seq below is stored or was reported LOST), and LOST
  may name frames in the middle of what is unacknowledged; an ordered dict keeps both O(1) per frame.
- Frames offered after the worker was lost are counted here too (``record_drop``): they were delivered, never
  queued, and dropped.
- Not thread-safe on purpose: the sender calls it under the lock it shares with its frame queue, so a snapshot of
  queue and ledger together always balances.
"""

from __future__ import annotations

import collections
from collections.abc import Iterable
from dataclasses import dataclass

from daemon.ipc.accounting import DropCounts, DropReason, StreamBalance
from daemon.ipc.frame_queue import QueueStats


@dataclass(frozen=True, slots=True)
class LostFrame:
    """A frame the sender had accepted and that will never be stored; ``seq`` is None if it was never sent."""

    frame_id: int
    key: str
    seq: int | None


@dataclass(frozen=True, slots=True)
class _Unacked:
    frame_id: int
    key: str
    nbytes: int


class DeliveryLedger:
    """Sent, stored and lost frames of one worker link."""

    def __init__(self) -> None:
        self._unacked: collections.OrderedDict[int, _Unacked] = collections.OrderedDict()
        self._unacked_bytes = 0
        self._next_seq = 0
        self._sent_bytes = 0
        self._stored = 0
        self._stored_bytes = 0
        self._dropped: collections.Counter[DropReason] = collections.Counter()
        self._delivered_unqueued = 0
        self._lost: list[LostFrame] = []

    @property
    def next_seq(self) -> int:
        return self._next_seq

    @property
    def sent_frames(self) -> int:
        return self._next_seq

    @property
    def sent_bytes(self) -> int:
        return self._sent_bytes

    @property
    def stored_frames(self) -> int:
        return self._stored

    @property
    def stored_bytes(self) -> int:
        return self._stored_bytes

    @property
    def unacked_frames(self) -> int:
        return len(self._unacked)

    @property
    def unacked_bytes(self) -> int:
        return self._unacked_bytes

    @property
    def lost(self) -> tuple[LostFrame, ...]:
        return tuple(self._lost)

    def record_drop(self, reason: DropReason, count: int = 1) -> None:
        """Frames delivered to the stream but dropped before they were queued."""
        self._delivered_unqueued += count
        self._dropped[reason] += count

    def send(self, frame_id: int, key: str, nbytes: int) -> int:
        """Register a frame about to be sent; returns its sequence number."""
        seq = self._next_seq
        self._next_seq += 1
        self._unacked[seq] = _Unacked(frame_id, key, nbytes)
        self._unacked_bytes += nbytes
        self._sent_bytes += nbytes
        return seq

    def stored_below(self, next_seq: int) -> int:
        """Every unacknowledged seq below ``next_seq`` is stored; returns how many frames that newly stores."""
        count = 0
        while self._unacked:
            seq, frame = next(iter(self._unacked.items()))
            if seq >= next_seq:
                break
            del self._unacked[seq]
            self._unacked_bytes -= frame.nbytes
            self._stored_bytes += frame.nbytes
            count += 1
        self._stored += count
        return count

    def lose_seqs(self, first_seq: int, count: int) -> tuple[int, int]:
        """The worker will never store these seqs: ``(frames, bytes)`` of those that were still unacknowledged."""
        frames = nbytes = 0
        for seq in range(first_seq, min(first_seq + count, self._next_seq)):
            frame = self._unacked.pop(seq, None)
            if frame is not None:
                self._lose(frame, seq)
                frames += 1
                nbytes += frame.nbytes
        return frames, nbytes

    def lose_unacked(self) -> int:
        """The worker is gone: every unacknowledged frame is lost. Returns how many."""
        count = len(self._unacked)
        for seq, frame in self._unacked.items():
            self._lose(frame, seq)
        self._unacked.clear()
        return count

    def lose_queued(self, frames: Iterable[tuple[int, str]]) -> int:
        """Frames taken out of the queue unsent, as ``(frame_id, key)``: lost. Returns how many."""
        count = 0
        for frame_id, key in frames:
            self._lost.append(LostFrame(frame_id, key, None))
            self._dropped[DropReason.WORKER_LOST] += 1
            count += 1
        return count

    def discard_queued(self, count: int) -> None:
        """Frames taken out of the queue unsent on purpose (an abort): dropped as ``aborted``, not lost."""
        self._dropped[DropReason.ABORTED] += count

    def _lose(self, frame: _Unacked, seq: int) -> None:
        self._unacked_bytes -= frame.nbytes
        self._lost.append(LostFrame(frame.frame_id, frame.key, seq))
        self._dropped[DropReason.WORKER_LOST] += 1

    def balance(self, queue: QueueStats) -> StreamBalance:
        """The balance sheet of the stream: this ledger together with the queue in front of it."""
        dropped = dict(self._dropped)
        dropped[DropReason.QUEUE_FULL] = dropped.get(DropReason.QUEUE_FULL, 0) + queue.dropped_full
        return StreamBalance(
            delivered=queue.accepted + queue.dropped_full + self._delivered_unqueued,
            stored=self._stored,
            in_flight=queue.frames + len(self._unacked),
            dropped=DropCounts.of(dropped),
        )
