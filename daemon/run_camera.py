"""One camera's reader thread: ``camera.read`` -> accounting -> ``sender.offer`` -> the observer's preview hook.

Design notes:
- The thread owns the camera while it runs (the run opened, configured and started it before): it reads with a
  short timeout so a stop request is seen within ``read_timeout_s``, and it stops the camera itself on the way
  out. The run closes the camera after joining the thread.
- The camera is never blocked by storage: ``offer`` returns at once in DROP mode (and waits at most the queue's
  block timeout in BLOCK mode, which the run uses for simulated cameras only).
- Accounting (:class:`~daemon.run_books.CameraBooks`): frame-id gaps are taken from the camera's own counter
  (``stats.frames_lost``) when a frame is flagged ``AFTER_GAP`` and once more at the end, and recorded on the
  sender (``record_drop``) so the sender's balance covers them; incomplete frames follow the profile's policy.
- A :class:`~daemon.errors.CameraError` (lost, watchdog timeout) ends the thread and is kept in :attr:`error`
  for the run, which then fails. An unexpected exception is kept the same way (the run fails with it) and logged
  with its traceback; nothing is swallowed.
- The observer's ``on_frame`` must not block; an exception from it is counted and logged (throttled), and the
  acquisition goes on: a broken preview must not lose data.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Literal

import structlog

from daemon.cameras.camera import Camera
from daemon.errors import AcqdError, CameraError
from daemon.ipc.accounting import DropReason, ThrottledCounter
from daemon.ipc.frame import Frame, FrameFlags
from daemon.ipc.frame_sender import FrameSender
from daemon.log import get_logger
from daemon.run_books import CameraBooks

OnFrame = Callable[[str, Frame], None]


class CameraReader:
    """Reads one started camera on its own thread until stopped, the frame limit, or a camera error."""

    def __init__(
        self,
        books: CameraBooks,
        camera: Camera,
        sender: FrameSender,
        *,
        run_id: str,
        frames_limit: int | None,
        incomplete: Literal["drop", "store"],
        on_frame: OnFrame | None = None,
        on_done: Callable[[], None] | None = None,
        read_timeout_s: float = 0.1,
    ) -> None:
        self.books = books
        self._camera = camera
        self._sender = sender
        self._run_id = run_id
        self._limit = frames_limit
        self._drop_incomplete = incomplete == "drop"
        self._on_frame = on_frame
        self._on_done = on_done
        self._read_timeout_s = read_timeout_s
        self._log = get_logger("daemon.run_camera", camera=books.name)
        self._observer_errors = ThrottledCounter(self._log, "run_observer_failed")
        self._lost_seen = 0
        self._stop = threading.Event()
        self._done = threading.Event()
        self.error: Exception | None = None
        self._thread = threading.Thread(target=self._run, name=f"acqd-camera-{books.name}", daemon=True)

    @property
    def name(self) -> str:
        return self.books.name

    @property
    def done(self) -> bool:
        return self._done.is_set()

    @property
    def reached_limit(self) -> bool:
        return self._limit is not None and self.books.read >= self._limit

    def start(self) -> None:
        self._lost_seen = self._camera.stats.frames_lost
        self._thread.start()

    def request_stop(self) -> None:
        self._stop.set()

    def join(self, timeout_s: float) -> bool:
        """Wait for the thread to end; False if it is still running after ``timeout_s``."""
        if self._thread.ident is None:
            return True
        self._thread.join(timeout_s)
        return not self._thread.is_alive()

    # ---- the thread ---------------------------------------------------------------------------------------------

    def _run(self) -> None:
        structlog.contextvars.bind_contextvars(run_id=self._run_id, camera=self.books.name)
        try:
            self._read_until_stopped()
        except CameraError as exc:
            self.error = exc
            self._log.error("camera_failed", error=str(exc), frames_read=self.books.read)
        except Exception as exc:  # kept: the run fails with it (never a silent reader death)
            self.error = exc
            self._log.exception("camera_reader_crashed", error=repr(exc))
        finally:
            self._stop_camera()
            self._done.set()
            if self._on_done is not None:
                self._on_done()

    def _read_until_stopped(self) -> None:
        while not self._stop.is_set() and not self.reached_limit:
            frame = self._camera.read(self._read_timeout_s)
            if frame is not None:
                self._account(frame)

    def _account(self, frame: Frame) -> None:
        books = self.books
        books.read += 1
        books.bytes_read += frame.nbytes
        if frame.flags & FrameFlags.AFTER_GAP:
            self._record_gaps()
        if frame.flags & FrameFlags.INCOMPLETE:
            if self._drop_incomplete:
                books.incomplete += 1
                self._sender.record_drop(DropReason.INCOMPLETE)
                return
            books.incomplete_stored += 1
        reason = self._sender.offer(frame, books.key)
        if reason is None:
            books.queued += 1
            books.bytes_queued += frame.nbytes
        elif reason is DropReason.QUEUE_FULL:
            books.queue_full += 1
        else:
            books.worker_lost += 1
        if self._on_frame is not None:
            self._preview(frame)

    def _record_gaps(self) -> None:
        lost = self._camera.stats.frames_lost
        new = lost - self._lost_seen
        if new > 0:
            self._lost_seen = lost
            self.books.camera_gap += new
            self._sender.record_drop(DropReason.CAMERA_GAP, new)

    def _preview(self, frame: Frame) -> None:
        assert self._on_frame is not None
        try:
            self._on_frame(self.books.key, frame)
        except Exception as exc:  # a broken preview must not stop acquisition: counted and logged (throttled)
            self._observer_errors.count(type(exc).__name__, error=repr(exc))

    def _stop_camera(self) -> None:
        try:
            self._camera.stop()
        except CameraError as exc:
            if self.error is None:
                self.error = exc
            self._log.error("camera_stop_failed", error=str(exc))
        try:
            self._record_gaps()  # frames lost at the very end (a reconnect) still count
        except AcqdError as exc:
            self._log.error("camera_gap_count_failed", error=str(exc))
