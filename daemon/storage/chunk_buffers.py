"""Chunk-group buffers: a bounded pool of reusable blocks, and copying a frame into one.

A *block* holds every chunk of one chunk group (see :mod:`daemon.storage.layout`), shaped
``(tiles_y, tiles_x, *non_spatial_chunk, chunk_y, chunk_x)`` so that ``block[ty, tx]`` is one chunk, C-contiguous,
ready for the codec.

Design notes:
- Blocks are reused: copying into fresh memory pays first-touch page faults (~1 GB/s against 5-7 GB/s into reused
  buffers on this kind of machine). New blocks are zeroed once; the out-of-bounds margin of edge tiles is never
  written by a frame, so it stays at the fill value forever. Slots a group never received are zeroed when the group
  is flushed (:func:`clear_slots`).
- Large buffers come from :func:`allocate`: an anonymous mapping without transparent huge pages, populated with
  ``madvise(MADV_POPULATE_WRITE)`` (in pieces, see below). Measured on a VM whose host reclaims idle memory: the first
  touch of ``np.zeros`` memory (which numpy marks for huge pages) ran at 0.3-0.4 GB/s, populating 4 KiB pages at
  2.2-2.4 GB/s; once warm, copying into either runs at the same 4-5 GB/s. On kernels without it (< 5.14) pages fault
  on first use as before. The ``madvise`` goes through ctypes, which releases the GIL: ``mmap.madvise`` holds it, and
  populating a 512 MiB block stopped every other Python thread of the process (a 1 ms ticker's longest gap:
  0.21-0.43 s, against 0.008-0.075 s through ctypes).
- A block is populated ``POPULATE_PIECE_BYTES`` at a time, not in one call. Populating holds the process's memory
  map lock for reading, and anything that changes the map waits for the call to end: starting a thread (its stack
  is mapped), ``mmap``/``munmap`` of a large buffer. Once such a writer waits, the kernel also holds back new
  readers, so every page fault of every thread waits too. Measured while another thread populated 512 MiB in one
  call: starting a thread took 0.14, 0.59 and 1.36 s (the whole populate; the last with memory the host had
  reclaimed). In 4 MiB pieces: at most 2.6 ms, and the populate took as long (0.16-0.18 s). The engine met this at
  its first chunk-row flush: the worker pool's first thread started while the prefetch populated the second
  block, and the flush waited 0.1 s.
- :meth:`BufferPool.prefetch` allocates the pool's blocks on a background thread when a writer is created
  (mapped blocks only: 1 MiB and more). The first group is filled on one core with the other idle (nothing is
  complete to compress yet); without it, the second group's block was populated in the appending thread just when
  the first group's compression had both cores busy (0.16-0.29 s per 2048x2048 chunk row). :meth:`acquire` waits
  for a block being prefetched rather than populate one of its own beside it: two populating at once took twice
  as long for the first block (0.33-0.43 s against 0.16-0.25 s). The pool never holds more than
  :attr:`BufferPool.capacity` blocks either way, so the memory bound is the same; it is reached at the start
  instead of after a few groups.
- :meth:`BufferPool.acquire` blocks while every block is in flight: that is the stream's back-pressure (a bounded
  amount of data waits for compression and I/O). It gives up when the stream's :class:`ErrorLatch` is set.
- :func:`scatter_frame` costs O(1) numpy calls per frame whatever the number of tiles.
"""

from __future__ import annotations

import contextlib
import ctypes
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
POPULATE_PIECE_BYTES = 4 << 20  # populated this much per madvise call (see the design notes)
_libc = ctypes.CDLL(None, use_errno=True)  # madvise's result is ignored: an older kernel faults pages on first use
_libc.madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
_libc.madvise.restype = ctypes.c_int


def allocate(shape: tuple[int, ...], dtype: np.dtype[Any]) -> npt.NDArray[Any]:
    """A zeroed C-contiguous array whose pages are already mapped (see the design notes); freed with the array."""
    nbytes = int(np.prod(shape)) * dtype.itemsize
    if nbytes < _MAPPED_MIN_BYTES:
        return np.zeros(shape, dtype=dtype)
    mapping = mmap.mmap(-1, nbytes, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    array = np.frombuffer(mapping, dtype=dtype).reshape(shape)
    with contextlib.suppress(OSError):  # an older kernel: (huge) pages fault in on first use instead
        mapping.madvise(mmap.MADV_NOHUGEPAGE)
    _populate(array.ctypes.data, nbytes)
    return array


def _populate(address: int, nbytes: int) -> None:
    """Map the pages of ``[address, address + nbytes)`` (page-aligned) in pieces, without holding the GIL."""
    # ctypes releases the GIL (mmap.madvise holds it: ~0.2 s per 512 MiB); pieces release the memory map's lock
    for offset in range(0, nbytes, POPULATE_PIECE_BYTES):
        size = min(POPULATE_PIECE_BYTES, nbytes - offset)
        _libc.madvise(ctypes.c_void_p(address + offset), ctypes.c_size_t(size), _MADV_POPULATE_WRITE)


class BufferPool:
    """At most ``capacity`` blocks of one shape; released blocks are handed out again."""

    def __init__(self, shape: tuple[int, ...], dtype: np.dtype[Any], capacity: int, latch: ErrorLatch) -> None:
        self._shape = shape
        self._dtype = dtype
        self._capacity = max(1, capacity)
        self._latch = latch
        self._free: list[Block] = []
        self._allocated = 0
        self._dropped = False
        self._prefetching = False  # the background thread is populating a block
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
            while not self._free and (self._allocated >= self._capacity or self._prefetching):
                error = self._latch.error
                if error is not None:
                    raise error
                self._cond.wait(_WAIT_S)
            if self._free:
                return self._free.pop()
            self._allocated += 1
        return allocate(self._shape, self._dtype)

    def prefetch(self) -> None:
        """Allocate blocks up to :attr:`capacity` on a background thread, for :meth:`acquire` to hand out (see the
        design notes). Small blocks and single-block pools are left to :meth:`acquire`. A failed allocation stops
        the prefetching silently: :meth:`acquire` then allocates (and reports the error) as without it."""
        if self._capacity < 2 or self.block_nbytes < _MAPPED_MIN_BYTES:
            return
        with self._cond:
            self._prefetching = True  # from now: a first acquire waits for the thread's block, not beside it
        threading.Thread(target=self._prefetch, name="acqd-buffers", daemon=True).start()

    def _prefetch(self) -> None:
        while True:
            with self._cond:
                self._prefetching = False
                if self._dropped or self._allocated >= self._capacity or self._latch.error is not None:
                    self._cond.notify_all()
                    return
                self._allocated += 1
                self._prefetching = True
            try:
                block: Block | None = allocate(self._shape, self._dtype)
            except (MemoryError, OSError):
                block = None
            with self._cond:
                if block is None or self._dropped:
                    self._allocated -= 1
                    self._prefetching = False
                    self._cond.notify_all()
                    return
                self._free.append(block)
                self._cond.notify()

    def release(self, block: Block) -> None:
        with self._cond:
            self._free.append(block)
            self._cond.notify()

    def drop(self) -> None:
        """Forget the free blocks (give their memory back)."""
        with self._cond:
            self._dropped = True
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
