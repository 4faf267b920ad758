"""heap.trim returns the free heap pages a run's frames leave behind (real glibc, real allocations)."""

from __future__ import annotations

import numpy as np
import pytest

from daemon import heap
from daemon.metrics import process_rss_bytes

MIB = 1 << 20


def rss() -> int:
    value = process_rss_bytes()
    assert value is not None
    return value


@pytest.mark.skipif(heap._malloc_trim() is None, reason="no glibc malloc_trim here")
def test_trim_returns_the_pages_of_frames_freed_from_the_heap() -> None:
    big = np.ones(16 * MIB, np.uint8)  # freeing a 16 MiB block raises glibc's mmap threshold:
    del big  # from now on 2 MiB frames come from the heap, as after a storage engine ran in the process
    frames = [np.ones(2 * MIB, np.uint8) for _ in range(200)]  # 400 MiB, every page touched
    pinned = frames[-1]  # the newest block pins the heap's top, so free() alone cannot shrink it
    before_free = rss()
    del frames
    kept = rss()
    assert kept > before_free - 100 * MIB, "freed frames were handed back already: nothing left to test"
    released = heap.trim()
    assert released is not None
    assert released >= 300 * MIB
    assert rss() < kept - 300 * MIB
    assert pinned.sum() == 2 * MIB  # the block still in use is intact


def test_trim_twice_returns_little_the_second_time() -> None:
    heap.trim()
    released = heap.trim()
    assert released is None or released < 50 * MIB
