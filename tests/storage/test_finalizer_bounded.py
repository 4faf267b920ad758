"""The finalizer's queue is bounded: submitting blocks while it lags, so memory stays flat when fsync is slow."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np

from daemon.errors import StorageError
from daemon.storage import ZarrStream
from daemon.storage.file_store import FileSink, FileStore
from daemon.storage.finalizer import MIN_CAPACITY, Finalizer
from daemon.storage.latch import ErrorLatch
from tests.storage.support import dims, random_frames, read, settings


def test_submit_blocks_while_capacity_tasks_are_pending() -> None:
    finalizer = Finalizer(ErrorLatch("test"), capacity=2)
    gate = threading.Event()
    ran: list[int] = []
    try:

        def stalled() -> None:
            gate.wait(10)
            ran.append(0)

        finalizer.submit(stalled)
        finalizer.submit(lambda: ran.append(1))
        third = threading.Thread(target=finalizer.submit, args=(lambda: ran.append(2),))
        third.start()
        third.join(0.2)
        assert third.is_alive()  # two tasks pending (one running, stalled): the third waits
        assert finalizer.pending == 2
        gate.set()
        third.join(5)
        assert not third.is_alive()
        finalizer.drain()
        assert ran == [0, 1, 2]  # in submission order
        assert finalizer.peak_pending == 2
    finally:
        gate.set()
        finalizer.close()


def test_reserve_raises_the_capacity_and_wakes_a_waiting_submit() -> None:
    finalizer = Finalizer(ErrorLatch("test"), capacity=1)
    gate = threading.Event()
    try:
        finalizer.submit(lambda: gate.wait(10) or None)
        second = threading.Thread(target=finalizer.submit, args=(lambda: None,))
        second.start()
        second.join(0.2)
        assert second.is_alive()
        finalizer.reserve(1)
        second.join(5)
        assert not second.is_alive()
        assert finalizer.capacity == 2
    finally:
        gate.set()
        finalizer.close()


def test_a_failing_task_sets_the_latch_and_frees_its_slot() -> None:
    latch = ErrorLatch("test")
    finalizer = Finalizer(latch, capacity=1)

    def fail() -> None:
        raise StorageError("disk full at /x")

    try:
        finalizer.submit(fail)
        finalizer.submit(lambda: None)  # would block forever if the failed task kept its slot
        finalizer.drain()
        assert str(latch.error) == "disk full at /x"
        assert finalizer.pending == 0
    finally:
        finalizer.close()


def test_close_runs_what_is_queued_and_is_idempotent() -> None:
    finalizer = Finalizer(ErrorLatch("test"), capacity=4)
    ran: list[int] = []
    for i in range(4):
        finalizer.submit(lambda i=i: ran.append(i))
    finalizer.close()
    finalizer.close()
    assert ran == [0, 1, 2, 3]


def test_the_idle_hook_runs_when_nothing_arrives() -> None:
    idle = threading.Event()
    finalizer = Finalizer(ErrorLatch("test"), on_idle=idle.set, idle_s=0.02)
    try:
        assert idle.wait(5)
    finally:
        finalizer.close()


class SlowSink(FileSink):
    """A local sink whose fsync takes 10 ms more (a disk that lags behind compression)."""

    def finalize(self) -> None:
        time.sleep(0.01)
        super().finalize()


class SlowStore(FileStore):
    def open_sink(self, key: str) -> FileSink:
        return SlowSink(key, self.path(key))


def test_a_lagging_disk_holds_the_appender_back_instead_of_queueing_without_end(tmp_path: Path) -> None:
    path = tmp_path / "s.zarr"
    spec = dims([("t", "time", 0, 1), ("y", "space", 64, 32), ("x", "space", 64, 32)])  # 4 objects per frame
    frames = random_frames(40, 64, 64, "uint16")
    stream = ZarrStream(settings(path, spec, max_threads=2), store=SlowStore(path))
    capacity = stream._finalizer.capacity  # the bound under test (private: not part of the API)
    assert MIN_CAPACITY < capacity < 40 * 4  # reserved by the array writer: far fewer than the run's objects
    for frame in frames:
        stream.append(frame)
        assert stream.stats().objects_pending <= capacity
    stream.close()
    stats = stream.stats()
    assert stats.objects_pending_peak == capacity  # it did fill up: the bound held the appender back
    assert stats.objects_finalized == 40 * 4
    np.testing.assert_array_equal(read(path, "0"), frames)
