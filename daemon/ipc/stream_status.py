"""What the two ends of the frame stream report: sender states, stats snapshots, the result of finishing.

Design notes:
- Snapshots are frozen values taken under the owner's lock, so their numbers agree with each other; the sender's
  :attr:`SenderStats.balance` always satisfies ``delivered == stored + dropped + in_flight``.
- ``lost`` lists every frame the sender had accepted and will never see stored (by frame id, key and seq; seq is
  None for frames still queued when the worker was lost). Frames refused by ``offer`` are not listed: the caller
  was told at once.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from daemon.ipc.accounting import StreamBalance
from daemon.ipc.delivery_ledger import LostFrame


class SenderState(enum.Enum):
    """Where a sender is; FINISHED and WORKER_LOST are final."""

    WAITING = "waiting"  # bound; no worker welcomed yet
    STREAMING = "streaming"
    FINISHING = "finishing"  # finish() called: draining the queue, then END
    FINISHED = "finished"  # FINAL received
    WORKER_LOST = "worker_lost"


@dataclass(frozen=True, slots=True)
class WorkerInfo:
    """The welcomed worker, as it introduced itself in HELLO."""

    worker_id: str
    pid: int | None


@dataclass(frozen=True, slots=True)
class SenderStats:
    """The sender's books at one instant: balance, link counters, queue depth, credit, losses, junk."""

    state: SenderState
    balance: StreamBalance
    frames_sent: int
    bytes_sent: int
    frames_stored: int
    bytes_stored: int
    unacked_frames: int
    unacked_bytes: int
    queued_frames: int
    queued_bytes: int
    queue_peak_bytes: int
    credit_frames: int
    credit_bytes: int
    worker: WorkerInfo | None
    lost_cause: str | None
    lost: tuple[LostFrame, ...]
    refused_peers: int
    junk: Mapping[str, int]
    frames_via_ring: int = 0  # of frames_sent, those whose pixels went through the worker's ring
    frames_via_region: int = 0  # of frames_sent, those sent by reference to a shared region (no copy)


@dataclass(frozen=True, slots=True)
class FinishResult:
    """How a stream ended: FINISHED (the worker sent FINAL) or WORKER_LOST; nothing is in flight any more."""

    state: SenderState
    summary: Mapping[str, Any] | None  # the worker's FINAL summary, if it sent one
    stats: SenderStats


@dataclass(frozen=True, slots=True)
class ReceiverStats:
    """The receiver's counters at one instant."""

    frames_received: int
    bytes_received: int
    frames_appended: int
    frames_rejected: int
    frames_held: int  # received, not yet appended or rejected
    frames_missing: int  # sequence numbers that never arrived (reported LOST)
    stored_next_seq: int
    over_credit: int  # frames that arrived beyond the window granted
    end_received: bool
    final_sent: bool
    peer_lost: bool
    junk: Mapping[str, int]
