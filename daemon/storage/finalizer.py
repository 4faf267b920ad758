"""The finalizer: one thread that makes finished objects durable and visible (fsync + rename), in order.

Design notes:
- fsync runs on its own thread, not in the compression workers (measured: +18% on big frames, +45% on small).
- Tasks are callables run in submission order; a task typically waits for the writes of one shard, writes its
  index, finalizes its sink and then lets the array writer advance what the metadata may claim.
- When no task arrives for ``idle_s`` the ``on_idle`` hook runs (deferred metadata updates).
- A task that raises sets the stream's :class:`ErrorLatch`; the thread keeps running so later tasks can abort
  their objects cleanly. :meth:`close` runs what is queued, then stops; it is idempotent.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable

from daemon.log import get_logger
from daemon.storage.latch import ErrorLatch

log = get_logger(__name__)

Task = Callable[[], None]


class Finalizer:
    def __init__(self, latch: ErrorLatch, on_idle: Task | None = None, idle_s: float = 0.25) -> None:
        self._latch = latch
        self._on_idle = on_idle
        self._idle_s = idle_s
        self._queue: queue.Queue[Task | None] = queue.Queue()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="acqd-finalizer", daemon=True)
        self._thread.start()

    def submit(self, task: Task) -> None:
        if self._closed:
            raise RuntimeError("finalizer is closed")
        self._queue.put(task)

    def drain(self) -> None:
        """Wait until every task submitted so far has run."""
        self._queue.join()

    def close(self) -> None:
        """Run what is queued, then stop the thread. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._queue.put(None)
        self._thread.join()

    def _run(self) -> None:
        while True:
            try:
                task = self._queue.get(timeout=self._idle_s)
            except queue.Empty:
                self._guarded(self._on_idle)
                continue
            try:
                if task is None:
                    return
                self._guarded(task)
            finally:
                self._queue.task_done()

    def _guarded(self, task: Task | None) -> None:
        if task is None:
            return
        try:
            task()
        except Exception as exc:  # any failure becomes the stream's sticky error
            if self._latch.set(exc):
                log.error("storage_write_failed", error=str(exc), where="finalizer")
