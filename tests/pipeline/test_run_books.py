"""Settling a run's books against the sender's: per camera stored and drops, storage errors told apart from a lost
worker, and disagreements reported (so ``balanced`` is a real check)."""

from __future__ import annotations

from typing import Any

from daemon.ipc.accounting import DropCounts, DropReason, StreamBalance
from daemon.ipc.delivery_ledger import LostFrame
from daemon.ipc.stream_status import SenderState, SenderStats
from daemon.run_books import CameraBooks, settle


def sender_stats(
    delivered: int, stored: int, lost: tuple[LostFrame, ...], dropped: dict[DropReason, int]
) -> SenderStats:
    balance = StreamBalance(delivered, stored, 0, DropCounts.of(dropped))
    return SenderStats(
        state=SenderState.FINISHED,
        balance=balance,
        frames_sent=0,
        bytes_sent=0,
        frames_stored=stored,
        bytes_stored=0,
        unacked_frames=0,
        unacked_bytes=0,
        queued_frames=0,
        queued_bytes=0,
        queue_peak_bytes=0,
        credit_frames=0,
        credit_bytes=0,
        worker=None,
        lost_cause=None,
        lost=lost,
        refused_peers=0,
        junk={},
    )


def books() -> list[CameraBooks]:
    a = CameraBooks(
        "a", "ka", read=10, bytes_read=100, camera_gap=2, incomplete=1, queue_full=2, queued=7, bytes_queued=70
    )
    b = CameraBooks("b", "kb", read=5, bytes_read=50, worker_lost=1, queued=4, bytes_queued=40)
    return [a, b]


LOST = (LostFrame(8, "ka", 9), LostFrame(3, "kb", None))


def sender_drops(lost_reason: DropReason = DropReason.WORKER_LOST) -> dict[DropReason, int]:
    return {
        DropReason.CAMERA_GAP: 2,
        DropReason.INCOMPLETE: 1,
        DropReason.QUEUE_FULL: 2,
        lost_reason: 3,
        DropReason.ABORTED: 1,
    }


def test_queued_frames_end_stored_lost_or_aborted_per_camera() -> None:
    stats = sender_stats(17, 8, LOST, sender_drops())
    settled = settle(books(), stats, {"ka": 1}, {"frames_stored": {"ka": 5, "kb": 3}}, storage_failed=False)
    assert settled.problems == ()
    assert settled.balanced
    a, b = settled.cameras
    assert (a.delivered, a.stored, a.bytes_stored) == (12, 5, 50)
    assert a.dropped == DropCounts(camera_gap=2, incomplete=1, queue_full=2, worker_lost=1, aborted=1)
    assert (b.delivered, b.stored) == (5, 3)
    assert b.dropped == DropCounts(worker_lost=2)
    assert (settled.delivered, settled.stored, settled.dropped.total) == (17, 8, 9)


def test_losses_are_storage_errors_when_the_worker_reported_one() -> None:
    stats = sender_stats(17, 8, LOST, sender_drops())
    settled = settle(books(), stats, {"ka": 1}, {"error": "disk full"}, storage_failed=True)
    a, b = settled.cameras
    assert (a.dropped.storage_error, a.dropped.worker_lost) == (1, 0)
    assert (b.dropped.storage_error, b.dropped.worker_lost) == (1, 1)  # refused at offer: the worker was gone


def test_disagreements_are_reported() -> None:
    stats = sender_stats(18, 9, LOST, sender_drops())
    summary: dict[str, Any] = {"frames_stored": {"ka": 6, "kb": 3}}
    settled = settle(books(), stats, {"ka": 1}, summary, storage_failed=False)
    assert not settled.balanced
    assert settled.problems == (
        "the sender counts 18 frames delivered, the cameras 17",
        "the sender counts 9 frames stored, the run 8",
        "the worker stored 6 frames of 'ka', the run counts 5",
    )
