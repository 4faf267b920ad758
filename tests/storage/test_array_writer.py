"""The array writer on an in-memory store: objects and shard indexes, bounded buffers, back-pressure, no reads."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import pytest

from daemon.storage import CompressionSettings, ZarrVersion
from daemon.storage.array_writer import ArrayTarget, ArrayWriter, block_capacity, plan_jobs
from daemon.storage.codec import ChunkCodec
from daemon.storage.finalizer import Finalizer
from daemon.storage.latch import ErrorLatch
from daemon.storage.layout import ArrayLayout
from daemon.storage.memory_store import MemoryStore
from daemon.storage.shard import ABSENT, ShardIndex
from daemon.storage.sink import Buffer, Sink
from daemon.storage.stats import Counters
from tests.storage.support import random_frames


class RecordingStore(MemoryStore):
    """A memory store that counts reads and records every metadata document put, in order."""

    def __init__(self) -> None:
        super().__init__()
        self.reads = 0
        self.puts: list[tuple[str, bytes]] = []

    def get(self, key: str) -> bytes | None:
        self.reads += 1
        return super().get(key)

    def put(self, key: str, data: Buffer) -> None:
        self.puts.append((key, bytes(data)))
        super().put(key, data)


class GatedStore(MemoryStore):
    """A memory store whose sinks cannot be opened until ``gate`` is set (a stalled disk)."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()

    def open_sink(self, key: str) -> Sink:
        assert self.gate.wait(10)
        return super().open_sink(key)


@dataclass
class Rig:
    writer: ArrayWriter
    finalizer: Finalizer
    executor: ThreadPoolExecutor
    latch: ErrorLatch

    def close(self) -> None:
        self.writer.flush_all()
        self.executor.shutdown(wait=True)
        self.finalizer.close()
        self.writer.finish()


@pytest.fixture
def make_rig() -> Iterator[object]:
    rigs: list[Rig] = []

    def make(
        store: MemoryStore, layout: ArrayLayout, compression: CompressionSettings | None = None, workers: int = 1
    ) -> Rig:
        latch = ErrorLatch(store.url)
        executor = ThreadPoolExecutor(max(2, workers))
        finalizer = Finalizer(latch, idle_s=0.05)
        dtype = np.dtype("uint16")
        target = ArrayTarget(store, "0", ZarrVersion.V3, layout, dtype, ChunkCodec(compression, dtype), ("t", "y", "x"))
        writer = ArrayWriter(target, executor, finalizer, latch, Counters(), metadata_interval_s=0.0, workers=workers)
        writer.write_metadata(0)
        rig = Rig(writer, finalizer, executor, latch)
        rigs.append(rig)
        return rig

    yield make
    for rig in rigs:
        rig.executor.shutdown(wait=True)
        rig.finalizer.close()


def test_sharded_objects_land_under_their_grid_keys(make_rig) -> None:
    store = RecordingStore()
    layout = ArrayLayout(shape=(0, 8, 12), chunks=(2, 4, 4), shard_chunks=(2, 1, 2))
    rig = make_rig(store, layout)
    rig.writer.append(random_frames(9, 8, 12, "uint16"))  # rows of 4 frames: 2 full rows, then 1 frame
    rig.close()
    shards = sorted(k for k in store.objects if "/c/" in k)
    assert shards == [f"0/c/{t}/{y}/{x}" for t in range(3) for y in range(2) for x in range(2)]
    assert store.reads == 0  # nothing written is read back


def test_a_ragged_shard_marks_missing_chunks_absent_and_ends_with_its_index(make_rig) -> None:
    store = MemoryStore()
    layout = ArrayLayout(shape=(0, 4, 4), chunks=(2, 4, 4), shard_chunks=(3, 1, 1))
    rig = make_rig(store, layout, CompressionSettings("blosc-lz4", 1))
    rig.writer.append(random_frames(3, 4, 4, "uint16"))  # chunks t0 (full) and t1 (1 of 2 frames); t2 never
    rig.close()
    shard = store.objects["0/c/0/0/0"]
    index = ShardIndex.decode(shard[-(3 * 16 + 4) :])
    first, second, absent = (index.entry(i) for i in range(3))
    assert absent == (ABSENT, ABSENT)
    (o0, n0), (o1, n1) = sorted([first, second])  # chunks land in the order the workers finish
    assert (o0, o1) == (0, n0)
    assert o1 + n1 == len(shard) - (3 * 16 + 4)


def test_the_metadata_only_grows_by_whole_object_rows(make_rig) -> None:
    store = RecordingStore()
    layout = ArrayLayout(shape=(0, 4, 4), chunks=(2, 4, 4), shard_chunks=(2, 1, 1))  # rows of 4 frames
    rig = make_rig(store, layout)
    frames = random_frames(11, 4, 4, "uint16")
    for frame in frames:
        rig.writer.append(frame[None])
        time.sleep(0.002)
        assert rig.writer.frames_stored % 4 == 0
        assert rig.writer.frames_stored <= rig.writer.frames_appended
    rig.finalizer.drain()
    rig.close()
    shapes = [json.loads(doc)["shape"][0] for key, doc in store.puts if key == "0/zarr.json"]
    assert shapes == sorted(shapes)
    assert all(s % 4 == 0 for s in shapes if s != 11)
    assert shapes[-1] == 11
    assert 8 in shapes  # the two full rows were claimed while running


def test_buffers_are_bounded_and_reused(make_rig) -> None:
    store = MemoryStore()
    layout = ArrayLayout(shape=(0, 16, 16), chunks=(4, 8, 8), shard_chunks=None)
    rig = make_rig(store, layout)
    rig.writer.append(random_frames(200, 16, 16, "uint16"))
    rig.close()
    assert layout.max_open_groups() == 1
    assert 1 <= rig.writer.buffers_allocated <= 2


def test_append_blocks_while_the_store_is_stalled(make_rig) -> None:
    store = GatedStore()
    layout = ArrayLayout(shape=(0, 4, 4), chunks=(1, 4, 4), shard_chunks=None)  # one group per frame
    rig = make_rig(store, layout)
    frames = random_frames(10, 4, 4, "uint16")
    done = threading.Event()

    def append() -> None:
        rig.writer.append(frames)
        done.set()

    thread = threading.Thread(target=append)
    thread.start()
    try:
        assert not done.wait(0.3)  # two blocks in flight, both stuck: the third frame waits
        assert rig.writer.frames_appended == 2
    finally:
        store.gate.set()
    thread.join(10)
    assert done.is_set()
    rig.close()
    assert rig.writer.frames_stored == 10


@pytest.mark.parametrize("workers", [1, 3])
def test_small_groups_get_a_flushed_block_per_worker(make_rig, workers: int) -> None:
    store = GatedStore()
    layout = ArrayLayout(shape=(0, 4, 4), chunks=(1, 4, 4), shard_chunks=None)  # one group (and job) per frame
    assert len(plan_jobs(layout, 2)) == 1
    rig = make_rig(store, layout, workers=workers)
    frames = random_frames(10, 4, 4, "uint16")
    thread = threading.Thread(target=rig.writer.append, args=(frames,))
    thread.start()
    try:
        time.sleep(0.3)  # every block in flight is stuck: one per worker, plus the one being filled
        assert rig.writer.frames_appended == 1 + max(1, workers)
        assert rig.writer.buffers_allocated == 1 + max(1, workers)
    finally:
        store.gate.set()
    thread.join(10)
    rig.close()
    assert rig.writer.frames_stored == 10


@pytest.mark.parametrize(
    ("shape", "chunks", "workers", "blocks"),
    [
        ((0, 2048, 2048), (64, 512, 512), 3, 2),  # 16 jobs a group: double buffering is enough
        ((0, 512, 512), (64, 512, 512), 3, 4),  # one job a group: one flushed block per worker
        ((0, 512, 512), (64, 512, 512), 1, 2),
        ((0, 4, 512, 512), (2, 1, 512, 512), 3, 8),  # 4 groups open at once (one per channel) and 4 flushed
    ],
)
def test_block_capacity(shape, chunks, workers: int, blocks: int) -> None:
    layout = ArrayLayout(shape=shape, chunks=chunks, shard_chunks=None)
    assert block_capacity(layout, len(plan_jobs(layout, 2)), workers) == blocks
