"""Chunk-group buffers: a bounded pool of reusable blocks, and copying a frame into one.

A *block* holds every chunk of one chunk group (see :mod:`daemon.storage.layout`), shaped
``(tiles_y, tiles_x, *non_spatial_chunk, chunk_y, chunk_x)`` so that ``block[ty, tx]`` is one chunk, C-contiguous,
ready for the codec.

Design notes:
- Blocks are reused: copying into fresh memory pays first-touch page faults (~1 GB/s against 5-7 GB/s into reused
  buffers on this kind of machine). New blocks are zeroed once; the out-of-bounds margin of edge tiles is never
  written by a frame, so it stays at the fill value forever. Slots a group never received are zeroed when the group
  is flushed (:func:`clear_slots`).
- Large buffers come from :func:`allocate`: an anonymous mapping without transparent huge pages, populated in one
  ``madvise(MADV_POPULATE_WRITE)`` call. Measured on a VM whose host reclaims idle memory: the first touch of
  ``np.zeros`` memory (which numpy marks for huge pages) ran at 0.3-0.4 GB/s, populating 4 KiB pages at 2.2-2.4 GB/s;
  once warm, copying into either runs at the same 4-5 GB/s. On kernels without it (< 5.14) pages fault on first
  use as before.
- :meth:`BufferPool.acquire` blocks while every block is in flight: that is the stream's back-pressure (a bounded
  amount of data waits for compression and I/O). It gives up when the stream's :class:`ErrorLatch` is set.
- :func:`scatter_frame` costs O(1) numpy calls per frame whatever the number of tiles.
"""

from __future__ import annotations

import contextlib
import mmap
import threading
from typing import Any

import numpy as np
import numpy.typing as npt

from daemon.storage.latch import ErrorLatch

Block = npt.NDArray[Any]
_WAIT_S = 0.05
_MAPPED_MIN_BYTES = 1 << 20  # smaller buffers come from numpy's allocator
_MADV_POPULATE_WRITE = 23  # Linux >= 5.14; not in Python 3.11's mmap module


def allocate(shape: tuple[int, ...], dtype: np.dtype[Any]) -> npt.NDArray[Any]:
    """A zeroed C-contiguous array whose pages are already mapped (see the design notes); freed with the array."""
    nbytes = int(np.prod(shape)) * dtype.itemsize
    if nbytes < _MAPPED_MIN_BYTES:
        return np.zeros(shape, dtype=dtype)
    mapping = mmap.mmap(-1, nbytes, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    with contextlib.suppress(OSError):  # an older kernel: (huge) pages fault in on first use instead
        mapping.madvise(mmap.MADV_NOHUGEPAGE)
        mapping.madvise(_MADV_POPULATE_WRITE)
    return np.frombuffer(mapping, dtype=dtype).reshape(shape)


class BufferPool:
    """At most ``capacity`` blocks of one shape; released blocks are handed out again."""

    def __init__(self, shape: tuple[int, ...], dtype: np.dtype[Any], capacity: int, latch: ErrorLatch) -> None:
        self._shape = shape
        self._dtype = dtype
        self._capacity = max(1, capacity)
        self._latch = latch
        self._free: list[Block] = []
        self._allocated = 0
        self._cond = threading.Condition()

    @property
    def capacity(self) -> int:
        return self._capacity

    @property
    def block_nbytes(self) -> int:
        return int(np.prod(self._shape)) * self._dtype.itemsize

    @property
    def allocated(self) -> int:
        return self._allocated

    def acquire(self) -> Block:
        """A block (zeroed if new, as left by its last user if reused); waits while all are in flight."""
        with self._cond:
            while not self._free and self._allocated >= self._capacity:
                error = self._latch.error
                if error is not None:
                    raise error
                self._cond.wait(_WAIT_S)
            if self._free:
                return self._free.pop()
            self._allocated += 1
        return allocate(self._shape, self._dtype)

    def release(self, block: Block) -> None:
        with self._cond:
            self._free.append(block)
            self._cond.notify()

    def drop(self) -> None:
        """Forget the free blocks (give their memory back)."""
        with self._cond:
            self._allocated -= len(self._free)
            self._free.clear()


def scatter_frame(block: Block, slot: tuple[int, ...], frame: npt.NDArray[Any]) -> None:
    """Copy ``frame`` (y, x) into every tile of ``block`` at non-spatial ``slot``."""
    index: tuple[Any, ...] = (slice(None), slice(None), *slot)
    tiles = block[index]  # (ty, tx, cy, cx)
    cy, cx = tiles.shape[-2:]
    height, width = frame.shape
    full_y, full_x = height // cy, width // cx
    rest_y, rest_x = height - full_y * cy, width - full_x * cx
    body_y, body_x = full_y * cy, full_x * cx
    if full_y and full_x:
        tiles[:full_y, :full_x] = frame[:body_y, :body_x].reshape(full_y, cy, full_x, cx).swapaxes(1, 2)
    if rest_y and full_x:
        tiles[full_y, :full_x, :rest_y] = frame[body_y:, :body_x].reshape(rest_y, full_x, cx).swapaxes(0, 1)
    if rest_x and full_y:
        tiles[:full_y, full_x, :, :rest_x] = frame[:body_y, body_x:].reshape(full_y, cy, rest_x)
    if rest_y and rest_x:
        tiles[full_y, full_x, :rest_y, :rest_x] = frame[body_y:, body_x:]


def clear_slots(block: Block, written: npt.NDArray[np.bool_]) -> None:
    """Set every slot not in ``written`` (shape: the non-spatial chunk shape) to the fill value 0."""
    if not written.all():
        index: tuple[Any, ...] = (slice(None), slice(None), ~written)
        block[index] = 0
