"""Copying frames into chunk-group blocks, clearing unwritten slots, and the bounded pool."""

from __future__ import annotations

import threading
import time
from typing import Any

import numpy as np
import pytest
from pytest_mock import MockerFixture

from daemon.errors import StorageError
from daemon.storage import chunk_buffers
from daemon.storage.chunk_buffers import BufferPool, clear_slots, scatter_frame
from daemon.storage.latch import ErrorLatch
from tests.waiting import wait_until


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


def prefetching_done() -> bool:
    return not any(t.name == "acqd-buffers" for t in threading.enumerate())


MAPPED = (2, 1 << 19)  # 1 MiB of uint8: a mapped block, the size prefetch works on


def test_prefetch_fills_the_pool_up_to_its_capacity_with_zeroed_blocks() -> None:
    pool = BufferPool(MAPPED, np.dtype(np.uint8), capacity=3, latch=ErrorLatch("test"))
    pool.prefetch()
    wait_until(lambda: pool.allocated == 3)
    blocks = [pool.acquire() for _ in range(3)]
    assert len({id(b) for b in blocks}) == 3
    assert not any(b.any() for b in blocks)
    assert pool.allocated == 3  # acquire handed out the prefetched blocks, it allocated none
    got: list[np.ndarray] = []
    thread = threading.Thread(target=lambda: got.append(pool.acquire()))
    thread.start()
    thread.join(0.2)
    assert thread.is_alive()  # still bounded: the fourth waits for a release
    pool.release(blocks[0])
    thread.join(5)
    assert got[0] is blocks[0]


def test_prefetch_and_acquire_together_never_exceed_the_capacity() -> None:
    pool = BufferPool(MAPPED, np.dtype(np.uint8), capacity=2, latch=ErrorLatch("test"))
    pool.prefetch()
    first = pool.acquire()  # races the prefetching thread for the first block
    second = pool.acquire()
    assert first is not second
    wait_until(prefetching_done)
    assert pool.allocated == 2


@pytest.mark.parametrize(("shape", "capacity"), [((4, 4), 3), (MAPPED, 1)])
def test_prefetch_leaves_small_blocks_and_single_block_pools_to_acquire(shape: tuple[int, ...], capacity: int) -> None:
    pool = BufferPool(shape, np.dtype(np.uint8), capacity=capacity, latch=ErrorLatch("test"))
    pool.prefetch()
    time.sleep(0.05)
    assert pool.allocated == 0


def test_a_dropped_pool_keeps_no_prefetched_block(mocker: MockerFixture) -> None:
    pool = BufferPool(MAPPED, np.dtype(np.uint8), capacity=2, latch=ErrorLatch("test"))
    gate = threading.Event()
    real = chunk_buffers.allocate

    def slow_allocate(shape: tuple[int, ...], dtype: np.dtype[Any]) -> np.ndarray:
        gate.wait(5)
        return real(shape, dtype)

    mocker.patch.object(chunk_buffers, "allocate", side_effect=slow_allocate)
    pool.prefetch()
    wait_until(lambda: pool.allocated == 1)  # the prefetching thread is inside an allocation
    pool.drop()  # the stream failed and gave its memory back meanwhile
    gate.set()
    wait_until(prefetching_done)
    assert pool.allocated == 0


def test_a_failed_prefetch_leaves_acquire_to_allocate(mocker: MockerFixture) -> None:
    pool = BufferPool(MAPPED, np.dtype(np.uint8), capacity=2, latch=ErrorLatch("test"))
    real = chunk_buffers.allocate
    mocker.patch.object(chunk_buffers, "allocate", side_effect=OSError(12, "Cannot allocate memory"))
    pool.prefetch()
    wait_until(prefetching_done)
    assert pool.allocated == 0
    mocker.patch.object(chunk_buffers, "allocate", side_effect=real)
    assert pool.acquire().shape == MAPPED
    assert pool.allocated == 1


def test_acquire_waits_for_the_block_being_prefetched_rather_than_populate_another(mocker: MockerFixture) -> None:
    """Two blocks populated side by side each take twice as long: the first acquire waits for the prefetched one."""
    pool = BufferPool(MAPPED, np.dtype(np.uint8), capacity=2, latch=ErrorLatch("test"))
    gate = threading.Event()
    real = chunk_buffers.allocate
    calls: list[str] = []

    def gated_allocate(shape: tuple[int, ...], dtype: np.dtype[Any]) -> np.ndarray:
        calls.append(threading.current_thread().name)
        gate.wait(5)
        return real(shape, dtype)

    mocker.patch.object(chunk_buffers, "allocate", side_effect=gated_allocate)
    pool.prefetch()
    got: list[np.ndarray] = []
    thread = threading.Thread(target=lambda: got.append(pool.acquire()), name="appender")
    thread.start()
    thread.join(0.2)
    assert thread.is_alive()
    assert calls == ["acqd-buffers"]  # the appender did not start a block of its own
    gate.set()
    thread.join(5)
    assert got
    assert got[0].shape == MAPPED
    wait_until(prefetching_done)
    assert calls == ["acqd-buffers", "acqd-buffers"]
    assert pool.allocated == 2


def test_a_mapped_block_is_populated_in_pieces_that_cover_it_once(mocker: MockerFixture) -> None:
    """One madvise over a whole block holds the memory map's lock for all of it: no thread could start meanwhile."""
    piece = chunk_buffers.POPULATE_PIECE_BYTES
    real = chunk_buffers._libc.madvise
    spans: list[tuple[int, int, int]] = []

    def recording_madvise(address: Any, size: Any, advice: int) -> int:
        spans.append((address.value, size.value, advice))
        result: int = real(address, size, advice)
        return result

    mocker.patch.object(chunk_buffers._libc, "madvise", side_effect=recording_madvise)
    nbytes = 3 * piece + 3 * 4096  # a last piece shorter than the others
    block = chunk_buffers.allocate((nbytes,), np.dtype(np.uint8))
    populated = [span for span in spans if span[2] == chunk_buffers._MADV_POPULATE_WRITE]
    assert [size for _, size, _ in populated] == [piece, piece, piece, 3 * 4096]
    start = block.ctypes.data
    assert [address - start for address, _, _ in populated] == [0, piece, 2 * piece, 3 * piece]
    assert not block.any()
    block[-1] = 7  # writable to its last byte
    assert block[-1] == 7
