"""Copying frames into chunk-group blocks, clearing unwritten slots, and the bounded pool."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from daemon.errors import StorageError
from daemon.storage.chunk_buffers import BufferPool, clear_slots, scatter_frame
from daemon.storage.latch import ErrorLatch


def reference_tiles(frame: np.ndarray, cy: int, cx: int) -> np.ndarray:
    """Tiles of ``frame`` padded with zeros, the slow obvious way."""
    ty, tx = -(-frame.shape[0] // cy), -(-frame.shape[1] // cx)
    padded = np.zeros((ty * cy, tx * cx), frame.dtype)
    padded[: frame.shape[0], : frame.shape[1]] = frame
    return np.array([[padded[y * cy : (y + 1) * cy, x * cx : (x + 1) * cx] for x in range(tx)] for y in range(ty)])


@pytest.mark.parametrize(("height", "width", "cy", "cx"), [(8, 8, 4, 4), (9, 7, 4, 3), (3, 10, 4, 4), (5, 5, 8, 2)])
def test_scatter_frame_fills_every_tile_at_its_slot(height: int, width: int, cy: int, cx: int) -> None:
    frame = np.arange(height * width, dtype=np.uint16).reshape(height, width) + 1
    ty, tx = -(-height // cy), -(-width // cx)
    block = np.zeros((ty, tx, 2, 3, cy, cx), np.uint16)
    scatter_frame(block, (1, 2), frame)
    np.testing.assert_array_equal(block[:, :, 1, 2], reference_tiles(frame, cy, cx))
    block[:, :, 1, 2] = 0
    assert not block.any()  # nothing else was touched


def test_clear_slots_zeroes_only_unwritten_slots() -> None:
    block = np.ones((1, 2, 2, 3, 2, 2), np.int8)
    written = np.array([[True, False, True], [False, True, True]])
    clear_slots(block, written)
    assert (block[:, :, written] == 1).all()
    assert (block[:, :, ~written] == 0).all()


def test_the_pool_reuses_released_blocks_and_blocks_when_exhausted() -> None:
    pool = BufferPool((4, 4), np.dtype(np.uint8), capacity=2, latch=ErrorLatch("test"))
    a, b = pool.acquire(), pool.acquire()
    got: list[np.ndarray] = []
    thread = threading.Thread(target=lambda: got.append(pool.acquire()))
    thread.start()
    thread.join(0.2)
    assert thread.is_alive()
    pool.release(a)
    thread.join(5)
    assert got[0] is a
    assert pool.allocated == 2
    pool.release(b)


def test_a_waiting_acquire_gives_up_when_the_stream_fails() -> None:
    latch = ErrorLatch("test")
    pool = BufferPool((4,), np.dtype(np.uint8), capacity=1, latch=latch)
    pool.acquire()
    errors: list[BaseException] = []

    def acquire() -> None:
        try:
            pool.acquire()
        except StorageError as exc:
            errors.append(exc)

    thread = threading.Thread(target=acquire)
    thread.start()
    latch.set(StorageError("disk full at /x"))
    thread.join(5)
    assert [str(e) for e in errors] == ["disk full at /x"]


def test_new_blocks_are_zeroed() -> None:
    pool = BufferPool((3, 3), np.dtype(np.float64), capacity=1, latch=ErrorLatch("test"))
    assert not pool.acquire().any()
