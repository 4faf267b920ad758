"""One resolution level of one array: frames into chunk buffers, chunks into shards, shards onto the store.

Threads and ownership:
- The appending thread (the caller of :meth:`ArrayWriter.append`) only copies frames into chunk-group blocks. When
  a group is complete it is *flushed*: its jobs go to the worker pool (see "Jobs" below).
- A worker job compresses chunks of one object and appends them to that object
  (:class:`~daemon.storage.shard.ShardBuilder`). When the last job of a group ends, its block returns to the pool
  for reuse.
- When every group of an object has been flushed, the finalizer thread waits for the object's jobs, writes the
  shard index, fsyncs and renames it, then advances the object rows the metadata may claim and rewrites the array
  metadata (throttled: at most every ``metadata_interval_s``, and when idle).
- After a failure (the stream's latch is set) workers write nothing more and their jobs fail, so only objects
  whose every chunk was written are still finalized: what was complete before the failure stays readable.

Design notes:
- Memory: at most :func:`block_capacity` blocks exist: the open groups, and as many flushed ones again (double
  buffering), or more when groups are small, so that every worker has a job: 512x512 frames in 512x512 chunks make
  one job per group, and two blocks left one of two workers idle (512x512 uint8, zstd: 135% CPU of 200%).
  Acquiring a block blocks the appending thread while the workers catch up. Nothing written is ever read back.
  The finalizer's queue is bounded too: this level reserves room for the objects of its blocks plus
  ``FINALIZER_LAG_GROUPS`` groups more, and submitting beyond that blocks the appending thread while fsync catches
  up (memory stays flat when the disk lags).
- Jobs: one per chunk (compressed into the worker's reused output buffer, then written), or several small chunks
  of one object per job (at least ``MIN_JOB_BYTES``), so a group splits into enough jobs to keep every worker busy
  and the per-job Python overhead stays negligible.
- The on-disk shape only grows by whole object rows whose objects are all finalized, so after a crash every frame
  it claims is on disk. :meth:`frames_stored` counts exactly the frames the metadata on disk claims.
- At :meth:`close` the open groups are flushed with their missing slots at the fill value, every object is
  finalized and the shape becomes the frames actually appended (rounded up to a whole index of dimension 0).
- Appending to an existing array (a resumed run, :class:`WriterStart`): frames are placed from the first index of
  an object row at or past what the metadata claims, so no existing object is written again; ``frames_appended``
  and ``frames_stored`` count this writer's frames only, and the metadata grows (over the gap, if any) only once a
  row of new frames is stored.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, Future
from concurrent.futures import wait as wait_futures
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from daemon.errors import StreamClosedError
from daemon.storage import metadata
from daemon.storage.chunk_buffers import Block, BufferPool, clear_slots, scatter_frame
from daemon.storage.codec import ChunkCodec
from daemon.storage.finalizer import Finalizer
from daemon.storage.latch import ErrorLatch
from daemon.storage.layout import ArrayLayout
from daemon.storage.settings import ZarrVersion
from daemon.storage.shard import ShardBuilder
from daemon.storage.sink import Store
from daemon.storage.stats import Counters

FINALIZER_LAG_GROUPS = 2  # groups of objects that may wait for fsync beyond those still compressing
MIN_JOB_BYTES = 4 << 20  # small chunks of one object are compressed and written together, one job


@dataclass(frozen=True, slots=True)
class ArrayTarget:
    """Where and how one array level is stored."""

    store: Store
    path: str  # the array's key, e.g. "sample1/brightfield/0"
    version: ZarrVersion
    layout: ArrayLayout
    dtype: np.dtype[Any]
    codec: ChunkCodec
    dimension_names: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class WriterStart:
    """Append to an existing array: the dimension-0 size its metadata claims, and the dimension-0 index the first
    frame goes to (the start of an object row, at or past the claim; see :mod:`daemon.storage.append_plan`)."""

    claimed_outer: int
    start_outer: int


@dataclass(slots=True)
class _Group:
    index: tuple[int, ...]
    block: Block
    written: npt.NDArray[np.bool_]
    expected: int
    count: int = 0


@dataclass(slots=True)
class _ObjectSet:
    """The objects (one per y/x object tile) at one non-spatial object index."""

    index: tuple[int, ...]
    expected_groups: int
    builders: dict[tuple[int, int], ShardBuilder] = field(default_factory=dict)
    futures: dict[tuple[int, int], list[Future[None]]] = field(default_factory=dict)
    flushed_groups: int = 0


@dataclass(frozen=True, slots=True)
class _Runtime:
    executor: Executor
    finalizer: Finalizer
    latch: ErrorLatch
    counters: Counters


Jobs = list[tuple[tuple[int, int], list[tuple[int, int]]]]


def plan_jobs(layout: ArrayLayout, itemsize: int) -> Jobs:
    """The worker jobs of one group: ``(object tile, chunk tiles)``, one chunk each, or consecutive chunks of one
    object so that a job holds at least ``MIN_JOB_BYTES`` (small chunks)."""
    ty, tx = layout.tiles
    oy, ox = layout.object_chunks[-2:]
    by_object: dict[tuple[int, int], list[tuple[int, int]]] = {}
    for y in range(ty):
        for x in range(tx):
            by_object.setdefault((y // oy, x // ox), []).append((y, x))
    chunk_nbytes = math.prod(layout.chunks) * itemsize
    per_job = max(1, MIN_JOB_BYTES // max(1, chunk_nbytes))
    return [
        (tile, chunks[start : start + per_job])
        for tile, chunks in by_object.items()
        for start in range(0, len(chunks), per_job)
    ]


def block_capacity(layout: ArrayLayout, jobs_per_group: int, workers: int) -> int:
    """The chunk-group blocks a level may hold: its open groups, and as many flushed ones again, or enough of them
    to give every worker a job when groups are small (see the design notes)."""
    open_groups = layout.max_open_groups()
    return open_groups + max(open_groups, -(-max(1, workers) // max(1, jobs_per_group)))


class ArrayWriter:
    def __init__(
        self,
        target: ArrayTarget,
        executor: Executor,
        finalizer: Finalizer,
        latch: ErrorLatch,
        counters: Counters,
        metadata_interval_s: float = 0.25,
        start: WriterStart | None = None,
        workers: int = 1,
    ) -> None:
        """``workers``: the threads of ``executor`` (how many jobs may run at once; sizes the buffer pool)."""
        self._t = target
        self._rt = _Runtime(executor, finalizer, latch, counters)
        layout = target.layout
        self._layout = layout
        self._interval = metadata_interval_s
        ns_chunks = layout.chunks[: layout.ns]
        block_shape = (*layout.tiles, *ns_chunks, layout.chunks[-2], layout.chunks[-1])
        self._jobs = plan_jobs(layout, target.dtype.itemsize)
        capacity = block_capacity(layout, len(self._jobs), workers)
        self._pool = BufferPool(block_shape, target.dtype, capacity, latch)
        self._pool.prefetch()
        self._groups: dict[tuple[int, ...], _Group] = {}
        self._sets: dict[tuple[int, ...], _ObjectSet] = {}
        ty, tx = layout.object_tiles()
        self._finalizer_slots = (capacity + FINALIZER_LAG_GROUPS * layout.max_open_groups()) * ty * tx
        finalizer.reserve(self._finalizer_slots)
        self._first_outer = 0 if start is None else start.start_outer
        self._first = self._first_outer * layout.frames_per_outer  # frame index of this writer's first frame
        self._frames = self._first  # frame index of the next frame (frames appended: minus self._first)
        self._lock = threading.Lock()  # guards what the finalizer thread updates
        self._rows_done: dict[int, int] = {}
        self._stored_rows = self._first_outer // layout.row_extent
        self._claimed_outer = 0 if start is None else start.claimed_outer  # dimension-0 size the metadata claims
        self._last_meta = 0.0
        self._final = False

    # -- read-only views ----------------------------------------------------------------------------------------

    @property
    def target(self) -> ArrayTarget:
        return self._t

    @property
    def frames_appended(self) -> int:
        return self._frames - self._first

    @property
    def next_frame(self) -> int:
        """The array's frame index the next frame goes to (``frames_appended`` unless appending to an array)."""
        return self._frames

    @property
    def frames_stored(self) -> int:
        """This writer's frames the metadata on disk claims (all of them are on the store)."""
        with self._lock:
            claimed = self._claimed_outer
        return max(0, min(self._frames, claimed * self._layout.frames_per_outer) - self._first)

    @property
    def max_buffer_bytes(self) -> int:
        """The most memory the chunk buffers of this level may take."""
        return self._pool.capacity * self._pool.block_nbytes

    @property
    def scratch_bytes(self) -> int:
        """The compression output buffer each worker thread keeps for this level (0 when none is reused)."""
        if any(len(chunks) > 1 for _, chunks in self._jobs):
            return 0
        return self._t.codec.scratch_bytes(math.prod(self._layout.chunks) * self._t.dtype.itemsize)

    @property
    def finalizer_slots(self) -> int:
        """The objects of this level that may wait for the finalizer at once (reserved in its bounded queue)."""
        return self._finalizer_slots

    @property
    def buffers_allocated(self) -> int:
        """Chunk-group blocks allocated so far (never more than the pool's capacity)."""
        return self._pool.allocated

    # -- appending thread ---------------------------------------------------------------------------------------

    def append(self, frames: npt.NDArray[Any]) -> None:
        """Append ``frames`` (n, y, x); the caller checked dtype, shape and capacity."""
        layout = self._layout
        for frame in frames:
            position = layout.frame_position(self._frames)
            group = self._groups.get(position.group)
            if group is None:
                group = self._open_group(position.group)
            scatter_frame(group.block, position.slot, frame)
            group.written[position.slot] = True
            group.count += 1
            self._frames += 1
            if group.count == group.expected:
                self._flush(group)

    def flush_all(self) -> None:
        """Flush every open group (ragged) and hand every object to the finalizer (end of acquisition)."""
        for index in sorted(self._groups):
            self._flush(self._groups[index])
        for index in sorted(self._sets):
            self._finalize_set(self._sets[index])

    def abort_open(self) -> None:
        """Discard what is under construction (after a failure). Call once the workers are idle."""
        for group in self._groups.values():
            self._pool.release(group.block)
        self._groups.clear()
        for object_set in self._sets.values():
            for builder in object_set.builders.values():
                builder.abort()
        self._sets.clear()
        self._pool.drop()

    def write_metadata(self, outer: int) -> None:
        """Write the array metadata claiming ``outer`` indices of dimension 0."""
        shape = self._layout.shape_with_outer(outer)
        t = self._t
        key, doc = metadata.array_document(t.version, t.path, shape, t.layout, t.dtype, t.codec, t.dimension_names)
        t.store.put(key, doc)
        self._rt.counters.add(bytes_written=len(doc))
        with self._lock:
            self._claimed_outer = shape[0]
            self._last_meta = time.monotonic()

    def finish(self) -> None:
        """After every object is finalized: claim every frame appended (the final shape)."""
        outer = self._layout.outer_size(self._frames) if self._layout.appendable else self._layout.shape[0]
        if self._first_outer and self._frames == self._first:  # appending, and nothing was: the claim stays
            outer = self._claimed_outer
        self._final = True
        self.write_metadata(outer)

    def _open_group(self, index: tuple[int, ...]) -> _Group:
        layout = self._layout
        block = self._pool.acquire()
        written = np.zeros(layout.chunks[: layout.ns], dtype=bool)
        group = _Group(index, block, written, layout.group_slots(index))
        self._groups[index] = group
        return group

    def _flush(self, group: _Group) -> None:
        del self._groups[group.index]
        clear_slots(group.block, group.written)
        obj_index = self._layout.group_object(group.index)
        object_set = self._sets.get(obj_index)
        if object_set is None:
            object_set = _ObjectSet(obj_index, self._layout.groups_in_object(obj_index))
            self._sets[obj_index] = object_set
        pending = [len(self._jobs)]
        pending_lock = threading.Lock()

        def done(future: Future[None]) -> None:
            error = future.exception()
            if error is not None:
                self._rt.latch.set(error)
            with pending_lock:
                pending[0] -= 1
                last = pending[0] == 0
            if last:
                self._pool.release(group.block)

        for tile, chunks in self._jobs:
            builder = self._builder(object_set, tile)
            positions = [(self._layout.chunk_in_object((*group.index, ty, tx)), ty, tx) for ty, tx in chunks]
            future = self._rt.executor.submit(self._write_chunks, builder, group.block, positions)
            object_set.futures.setdefault(tile, []).append(future)
            future.add_done_callback(done)
        object_set.flushed_groups += 1
        if object_set.flushed_groups == object_set.expected_groups:
            self._finalize_set(object_set)

    def _builder(self, object_set: _ObjectSet, tile: tuple[int, int]) -> ShardBuilder:
        builder = object_set.builders.get(tile)
        if builder is None:
            t = self._t
            key = metadata.chunk_key(t.version, t.path, (*object_set.index, *tile))
            chunks = t.layout.chunks_per_object if t.layout.sharded else None
            builder = ShardBuilder(t.store, key, chunks)
            object_set.builders[tile] = builder
        return builder

    def _finalize_set(self, object_set: _ObjectSet) -> None:
        del self._sets[object_set.index]
        row = object_set.index[0]
        for tile, builder in object_set.builders.items():
            futures = object_set.futures.get(tile, [])
            self._rt.finalizer.submit(_bind(self._finalize_object, builder, futures, row))

    # -- worker threads -----------------------------------------------------------------------------------------

    def _write_chunks(self, builder: ShardBuilder, block: Block, positions: Sequence[tuple[int, int, int]]) -> None:
        error = self._rt.latch.error
        if error is not None:  # the stream failed: no more I/O, and this object must not be finalized
            raise StreamClosedError(f"{builder.key} not written: the stream failed earlier ({error}).")
        codec = self._t.codec
        if len(positions) == 1:  # a large chunk: compressed into the thread's reused buffer, written at once
            position, ty, tx = positions[0]
            written = builder.add([(position, codec.encode_reusing(block[ty, tx]))])
        else:  # small chunks (fresh buffers are cheap below glibc's mmap threshold): one vectored write
            written = builder.add([(position, codec.encode(block[ty, tx])) for position, ty, tx in positions])
        self._rt.counters.add(bytes_written=written, chunks=len(positions))

    # -- finalizer thread ---------------------------------------------------------------------------------------

    def _finalize_object(self, builder: ShardBuilder, futures: Sequence[Future[None]], row: int) -> None:
        wait_futures(futures)
        if any(f.exception() is not None for f in futures):
            builder.abort()  # incomplete: never visible
            return
        written = builder.finalize()
        self._rt.counters.add(bytes_written=written, objects=1)
        with self._lock:
            self._rows_done[row] = self._rows_done.get(row, 0) + 1
            per_row = self._layout.objects_per_row
            while self._rows_done.get(self._stored_rows, 0) == per_row:
                del self._rows_done[self._stored_rows]
                self._stored_rows += 1
            due = time.monotonic() - self._last_meta >= self._interval
        if due:
            self.refresh_metadata()

    def refresh_metadata(self) -> None:
        """Rewrite the metadata if more object rows were stored than it claims (finalizer thread, or after it)."""
        with self._lock:
            if self._final:
                return
            outer = min(self._stored_rows * self._layout.row_extent, self._layout.outer_size(self._frames))
            if not self._layout.appendable:
                outer = min(outer, self._layout.shape[0])
            if outer <= max(self._claimed_outer, self._first_outer):  # appending: only once new rows are stored
                return
        self.write_metadata(outer)


def _bind(fn: Callable[..., None], *args: Any) -> Callable[[], None]:
    def task() -> None:
        fn(*args)

    return task
