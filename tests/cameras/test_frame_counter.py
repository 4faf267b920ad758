"""The frame counter flags gaps and incomplete frames and keeps the statistics."""

from __future__ import annotations

from daemon.cameras.camera import CameraStats, FrameCounter, FrameLayout
from daemon.ipc.frame import FrameFlags


def test_consecutive_ids_have_no_flags() -> None:
    counter = FrameCounter()
    assert [counter.observe(i, incomplete=False) for i in range(3)] == [FrameFlags.NONE] * 3
    assert counter.snapshot() == CameraStats(frames_delivered=3)


def test_a_jump_flags_after_gap_and_counts_the_lost_frames() -> None:
    counter = FrameCounter()
    counter.observe(0, incomplete=False)
    assert counter.observe(4, incomplete=True) == FrameFlags.AFTER_GAP | FrameFlags.INCOMPLETE
    assert counter.snapshot() == CameraStats(frames_delivered=2, incomplete_frames=1, frames_lost=3, gaps=1)


def test_begin_starts_a_fresh_sequence() -> None:
    counter = FrameCounter()
    counter.observe(10, incomplete=False)
    counter.begin()
    assert counter.observe(0, incomplete=False) == FrameFlags.NONE
    assert counter.last_id == 0


def test_lost_frames_and_reconnects_without_an_id_jump() -> None:
    counter = FrameCounter()
    counter.count_lost(0)
    counter.count_lost(5)
    counter.count_reconnect()
    assert counter.snapshot() == CameraStats(frames_lost=5, gaps=1, reconnects=1)


def test_layout_nbytes() -> None:
    import numpy as np

    assert FrameLayout((4, 5, 3), np.dtype(np.uint16)).nbytes == 120
