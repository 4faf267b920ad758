"""The byte-bounded frame queue: exact drop counts when full, the blocking mode, close and drain."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from daemon.errors import ConfigError
from daemon.ipc.frame import Frame
from daemon.ipc.frame_queue import FrameQueue, PutResult, QueueMode

from .stream_helpers import make_frame

FRAME_BYTES = 8 * 16 * 2  # make_frame's default (8, 16) uint16


def test_drops_exactly_what_does_not_fit_in_bytes() -> None:
    q: FrameQueue[Frame] = FrameQueue(3 * FRAME_BYTES + FRAME_BYTES // 2)
    results = [q.put(make_frame(i)) for i in range(10)]
    assert results == [PutResult.ACCEPTED] * 3 + [PutResult.FULL] * 7
    stats = q.stats()
    assert (stats.frames, stats.nbytes, stats.accepted, stats.dropped_full) == (3, 3 * FRAME_BYTES, 3, 7)
    assert [f.frame_id for f in q.drain()] == [0, 1, 2]


def test_room_comes_back_as_frames_are_taken() -> None:
    q: FrameQueue[Frame] = FrameQueue(2 * FRAME_BYTES)
    for i in range(2):
        assert q.put(make_frame(i)) is PutResult.ACCEPTED
    assert q.put(make_frame(2)) is PutResult.FULL
    first = q.get_nowait()
    assert first is not None
    assert first.frame_id == 0
    assert q.put(make_frame(3)) is PutResult.ACCEPTED
    assert [q.get_nowait().frame_id for _ in range(2)] == [1, 3]  # type: ignore[union-attr]
    assert q.get_nowait() is None
    stats = q.stats()
    assert (stats.accepted, stats.dropped_full, stats.peak_nbytes, stats.nbytes) == (3, 1, 2 * FRAME_BYTES, 0)


def test_frame_count_bound() -> None:
    q: FrameQueue[Frame] = FrameQueue(1 << 30, max_frames=2)
    assert [q.put(make_frame(i)) for i in range(4)] == [PutResult.ACCEPTED] * 2 + [PutResult.FULL] * 2


def test_frame_larger_than_the_queue_is_dropped_in_both_modes() -> None:
    for mode in QueueMode:
        q: FrameQueue[Frame] = FrameQueue(FRAME_BYTES - 1, mode=mode, block_timeout_s=10.0)
        started = time.monotonic()
        assert q.put(make_frame(0)) is PutResult.FULL
        assert time.monotonic() - started < 1.0  # never waits for room that can never come
        assert q.stats().dropped_full == 1


def test_block_mode_waits_for_room() -> None:
    q: FrameQueue[Frame] = FrameQueue(FRAME_BYTES, mode=QueueMode.BLOCK, block_timeout_s=5.0)
    assert q.put(make_frame(0)) is PutResult.ACCEPTED
    taker = threading.Timer(0.2, q.get_nowait)
    taker.start()
    started = time.monotonic()
    assert q.put(make_frame(1)) is PutResult.ACCEPTED
    waited = time.monotonic() - started
    taker.join()
    assert 0.1 < waited < 4.0
    assert q.stats().dropped_full == 0


def test_block_mode_drops_after_its_timeout() -> None:
    q: FrameQueue[Frame] = FrameQueue(FRAME_BYTES, mode=QueueMode.BLOCK, block_timeout_s=5.0)
    q.put(make_frame(0))
    started = time.monotonic()
    assert q.put(make_frame(1), timeout=0.1) is PutResult.FULL
    assert 0.09 < time.monotonic() - started < 2.0
    assert q.stats().dropped_full == 1


def test_close_wakes_a_blocked_putter_and_refuses_more() -> None:
    q: FrameQueue[Frame] = FrameQueue(FRAME_BYTES, mode=QueueMode.BLOCK, block_timeout_s=30.0)
    q.put(make_frame(0))
    results: list[PutResult] = []
    putter = threading.Thread(target=lambda: results.append(q.put(make_frame(1))))
    putter.start()
    time.sleep(0.1)
    q.close()
    putter.join(5.0)
    assert results == [PutResult.CLOSED]
    assert q.put(make_frame(2)) is PutResult.CLOSED
    assert q.stats().dropped_full == 0  # refusals after close are the owner's to count
    assert q.get(timeout=0.1) is not None  # what was queued can still be taken
    assert q.get(timeout=0.1) is None
    q.close()  # idempotent


def test_get_waits_for_an_item() -> None:
    q: FrameQueue[Frame] = FrameQueue(1 << 20)
    threading.Timer(0.1, lambda: q.put(make_frame(5))).start()
    item = q.get(timeout=5.0)
    assert item is not None
    assert item.frame_id == 5
    assert q.get(timeout=0.05) is None


def test_on_ready_fires_when_the_queue_becomes_non_empty() -> None:
    calls: list[int] = []
    q: FrameQueue[Frame] = FrameQueue(1 << 20, on_ready=lambda: calls.append(1))
    q.put(make_frame(0))
    q.put(make_frame(1))
    assert len(calls) == 1
    q.drain()
    q.put(make_frame(2))
    assert len(calls) == 2


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"max_bytes": 0}, "max_bytes"),
        ({"max_bytes": 1, "max_frames": 0}, "max_frames"),
        ({"max_bytes": 1, "block_timeout_s": 0}, "block_timeout_s"),
    ],
)
def test_invalid_bounds_name_the_field(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(ConfigError, match=rf"^{field} must be"):
        FrameQueue(**kwargs)  # type: ignore[arg-type]


def test_items_of_any_size_are_counted_by_their_bytes() -> None:
    q: FrameQueue[Frame] = FrameQueue(1000)
    big = Frame(np.zeros((10, 60), np.uint8), 0, 0)
    small = Frame(np.zeros((10, 40), np.uint8), 1, 0)
    assert q.put(big) is PutResult.ACCEPTED
    assert q.put(big) is PutResult.FULL
    assert q.put(small) is PutResult.ACCEPTED
    assert q.stats().nbytes == 1000
