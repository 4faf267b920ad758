"""The run supervisor: one profile -> its cameras -> one frame stream -> one storage worker -> one store.

>>> run = Run(load_profile("config/profiles/demo.yaml"))   # doctest: +SKIP
>>> run.start()          # raises ConfigError / StorageError / CameraError before anything runs
>>> run.wait()           # or request_stop() / request_abort() from another thread
>>> run.summary["outcome"]

Lifecycle: ``starting -> running -> stopping -> finished | aborted | failed``. :meth:`Run.start` checks the store
again (inside the data root; an existing store refused unless ``overwrite``; S3 ``preflight``), opens and
configures every camera (so a wrong device or ROI fails before any store is created), binds the frame stream,
spawns the storage worker (or waits for an external one at ``storage.worker_endpoint``) and waits for its HELLO,
then starts the cameras and their reader threads (:mod:`daemon.run_camera`). Any failure before frames flow undoes
all of it and raises the acqd error.

A supervisor thread then watches the stop conditions (``frames`` per camera, ``duration_s``, or a request), the
readers, the worker and the stream, emits a ``run_metrics`` event every ``metrics_interval_s``, and shuts down:
stop the readers (each stops its camera), discard the queue on abort (counted ``aborted``), ``finish`` the stream
(END -> the worker finalises the store -> FINAL), settle the books (:mod:`daemon.run_books`) and log one canonical
``run_summary``. An abort discards only what is still queued here: the frames already sent (at most the worker's
credit window) are stored.

Design notes:
- A run fails when a camera fails (lost, watchdog), the worker dies or goes silent (its unacknowledged and queued
  frames are counted ``worker_lost``), storage fails (``storage_error``), or the books do not balance. The store
  is left readable in every case (the worker claims only what it finalised).
- With ``resume`` the run appends to the store of an interrupted run (:mod:`daemon.storage.append_plan`)
  instead of creating one; its summary and status name the run it resumes.
- ``run_id`` is bound with ``structlog.contextvars`` in every thread the run starts (and during ``start``).
- Helpers: :mod:`daemon.run_stream` (sender, endpoint, worker process), :mod:`daemon.run_camera` (reader
  threads), :mod:`daemon.run_books` and :mod:`daemon.run_outcome` (accounting, summary), :mod:`daemon.metrics`.
- :meth:`Run.status` never blocks for long (two short locks); observers are called outside the run's lock and an
  observer's exception is logged, never allowed to break the run.
"""

from __future__ import annotations

import collections
import threading
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import structlog

from daemon import heap
from daemon.cameras.camera import Camera
from daemon.cameras.factory import create_camera
from daemon.errors import AcqdError, ConfigError, ConflictError
from daemon.ipc.frame import Frame
from daemon.ipc.stream_status import FinishResult, SenderState
from daemon.log import get_logger
from daemon.metrics import RunMeter
from daemon.profile import Profile
from daemon.profile_cameras import CameraProfile
from daemon.run_books import CameraBooks
from daemon.run_camera import CameraReader
from daemon.run_manager import RunState, RunStatus
from daemon.run_observer import RunObserver, notify
from daemon.run_outcome import check_store, layout_problem, summarize
from daemon.run_stream import RunStream
from daemon.storage.settings_json import ResumeRequest

__all__ = ["Run", "RunObserver"]

TICK_S = 0.1
CAMERA_STOP_TIMEOUT_S = 15.0


def new_run_id() -> str:
    return time.strftime("%Y%m%dT%H%M%S", time.gmtime()) + "-" + uuid.uuid4().hex[:8]


class Run:
    """One acquisition run (see the module docstring)."""

    def __init__(
        self,
        profile: Profile,
        *,
        run_id: str | None = None,
        observer: RunObserver | None = None,
        metrics_interval_s: float | None = None,
        runtime_dir: Path | None = None,
        log_format: str = "json",
        log_level: str = "INFO",
        worker_start_timeout_s: float = 30.0,
        finish_timeout_s: float = 600.0,
        resume: ResumeRequest | None = None,
    ) -> None:
        self.run_id = run_id or new_run_id()
        self.profile = profile
        self.resume = resume
        self._observer = observer or RunObserver()
        interval = metrics_interval_s if metrics_interval_s is not None else profile.acquisition.metrics_interval_s
        if not interval > 0:
            raise ConfigError(f"metrics_interval_s must be > 0 seconds. Got {interval} instead.")
        self._metrics_interval_s = interval
        self._worker_start_timeout_s = worker_start_timeout_s
        self._finish_timeout_s = finish_timeout_s
        self._log = get_logger("daemon.run")
        self._lock = threading.RLock()
        self._state = RunState.STARTING
        self._started = False
        self._started_at = time.time()
        self._finished_at: float | None = None
        self._began = time.monotonic()
        self._errors: list[str] = []
        self._summary: Mapping[str, Any] | None = None
        self._rates: dict[str, float] = {}
        self._stop_requested = self._abort_requested = self._draining = False
        self._aborted: collections.Counter[str] = collections.Counter()
        self._wake = threading.Event()
        self._done = threading.Event()
        self._stream = RunStream(
            profile,
            self.run_id,
            runtime_dir=runtime_dir,
            log_format=log_format,
            log_level=log_level,
            on_worker_exit=self._wake.set,
            resume=resume,
        )
        self._cameras: list[tuple[CameraProfile, Camera]] = []
        self._readers: list[CameraReader] = []
        self._meter = RunMeter(profile.stream.store_path)
        self._supervisor = threading.Thread(target=self._supervise, name="acqd-run-supervisor", daemon=True)

    # ---- public API --------------------------------------------------------------------------------------------

    @property
    def worker_pid(self) -> int | None:
        """The spawned storage worker's process id (None with an external worker, or before it was spawned)."""
        return self._stream.worker_pid

    @property
    def summary(self) -> Mapping[str, Any] | None:
        """The ``run_summary`` once the run has ended (None before)."""
        return self._summary

    def start(self) -> None:
        """Check the store, start the worker and the cameras; return when frames flow. Raises the acqd error of a
        failure before that (ConfigError, StorageError, CameraError), after undoing everything."""
        with self._lock:
            if self._started:
                raise ConflictError(f"run {self.run_id} was already started.")
            self._started = True
            self._started_at = time.time()
        with structlog.contextvars.bound_contextvars(run_id=self.run_id):
            stream = self.profile.stream
            cameras = [c.name for c in self.profile.cameras]
            self._log.info("run_starting", profile=self.profile.file, store=stream.store_path, cameras=cameras)
            notify(self._log, self._observer.on_state, self.status())
            try:
                check_store(self.profile, append=self.resume is not None)
                self._open_cameras()
                self._stream.open(self._worker_start_timeout_s)
                self._start_cameras()
            except BaseException as exc:
                self._fail_start(exc)
                raise
            self._began = time.monotonic()
            for reader in self._readers:
                reader.start()
            self._log.info("run_started", worker_pid=self.worker_pid, endpoint=self._stream.sender.endpoint)
            self._set_state(RunState.RUNNING)
            self._supervisor.start()

    def request_stop(self) -> None:
        """Graceful: stop the cameras, store what is queued, finalise the store. Returns at once."""
        with self._lock:
            self._stop_requested = True
        self._wake.set()

    def request_abort(self) -> None:
        """Fast: stop the cameras, discard the queue (counted ``aborted``), close the store. Returns at once."""
        with self._lock:
            self._abort_requested = True
            draining = self._draining
        if draining:
            self._discard()  # the supervisor is already waiting for the stream to finish
        self._wake.set()

    def wait(self, timeout_s: float | None = None) -> bool:
        """True once the run has ended (its summary is ready)."""
        return self._done.wait(timeout_s)

    def status(self) -> RunStatus:
        """A frozen snapshot of the run."""
        with self._lock:
            state, errors, rates, summary = self._state, tuple(self._errors), dict(self._rates), self._summary
            finished_at = self._finished_at
        counts, drops = self._counts(summary)
        return RunStatus(
            run_id=self.run_id,
            state=state,
            profile=self.profile.file,
            store=self.profile.stream.store_path,
            started_at=self._started_at,
            finished_at=finished_at,
            counts=counts,
            drops=drops,
            rates=rates,
            errors=errors,
            resumes=None if self.resume is None else self.resume.resumes,
        )

    # ---- start -------------------------------------------------------------------------------------------------

    def _open_cameras(self) -> None:
        for camera_profile in self.profile.cameras:
            camera = create_camera(camera_profile.settings)
            self._cameras.append((camera_profile, camera))
            camera.open()
            camera.configure()
            problem = layout_problem(camera_profile, camera.layout)
            if problem is not None:
                raise ConfigError(problem)

    def _start_cameras(self) -> None:
        for _, camera in self._cameras:
            camera.start()
        acquisition = self.profile.acquisition
        for camera_profile, camera in self._cameras:
            reader = CameraReader(
                CameraBooks(camera_profile.name, camera_profile.array.output_key),
                camera,
                self._stream.sender,
                run_id=self.run_id,
                frames_limit=acquisition.frames,
                incomplete=acquisition.incomplete,
                on_frame=self._on_frame,
                on_done=self._wake.set,
            )
            self._readers.append(reader)

    def _fail_start(self, exc: BaseException) -> None:
        message = str(exc) if isinstance(exc, AcqdError) else repr(exc)
        self._log.error("run_start_failed", error=message, error_type=type(exc).__name__)
        with self._lock:
            self._errors.append(message)
        self._close_cameras()
        result = self._finish_stream(timeout_s=10.0 if self._stream.connected else 0.0)
        self._stream.close(result)
        self._finalize(result, "start_failed")

    # ---- supervision -------------------------------------------------------------------------------------------

    def _supervise(self) -> None:
        structlog.contextvars.bind_contextvars(run_id=self.run_id)
        cause = "supervisor_failed"
        try:
            cause = self._watch()
        except Exception as exc:  # a bug here must still end the run cleanly: recorded, and the run fails
            self._log.exception("run_supervisor_failed", error=repr(exc))
            with self._lock:
                self._errors.append(f"the run supervisor failed: {exc!r}")
        self._shut_down(cause)

    def _watch(self) -> str:
        """Wait for a reason to stop; emit metrics meanwhile. Returns the stop cause."""
        sender = self._stream.sender
        acquisition = self.profile.acquisition
        deadline = None if acquisition.duration_s is None else self._began + acquisition.duration_s
        next_metrics = self._began + self._metrics_interval_s
        books = [reader.books for reader in self._readers]
        while True:
            now = time.monotonic()
            stats = sender.stats()
            self._meter.tick(now, books, stats)
            cause = self._stop_cause(now, deadline, stats.state)
            if cause is not None:
                return cause
            if now >= next_metrics:
                self._emit_metrics(now)
                next_metrics = max(next_metrics + self._metrics_interval_s, now)
            self._wake.wait(TICK_S)
            self._wake.clear()

    def _stop_cause(self, now: float, deadline: float | None, stream: SenderState) -> str | None:
        with self._lock:
            if self._abort_requested:
                return "abort"
            if self._stop_requested:
                return "stop"
        if any(reader.error is not None for reader in self._readers):
            return "camera_failed"
        if stream is SenderState.WORKER_LOST:
            return "worker_lost"
        if deadline is not None and now >= deadline:
            return "duration"
        if all(reader.done for reader in self._readers):
            return "frames"
        return None

    def _shut_down(self, cause: str) -> None:
        self._set_state(RunState.STOPPING)
        self._log.info("run_stopping", cause=cause)
        for reader in self._readers:
            reader.request_stop()
        if cause == "abort":
            self._discard()
        for reader in self._readers:
            if not reader.join(CAMERA_STOP_TIMEOUT_S):
                with self._lock:
                    self._errors.append(f"camera {reader.name!r} did not stop within {CAMERA_STOP_TIMEOUT_S} s.")
        with self._lock:
            self._draining = True
            abort = self._abort_requested
        if abort:
            self._discard()
        result = self._finish_stream(self._finish_timeout_s)
        self._stream.close(result)
        self._close_cameras()
        self._finalize(result, cause)

    def _discard(self) -> None:
        frames = self._stream.discard()
        with self._lock:
            self._aborted.update(key for _, key in frames)
        if frames:
            self._log.info("run_queue_discarded", frames=len(frames))

    def _finish_stream(self, timeout_s: float) -> FinishResult | None:
        try:
            return self._stream.finish(timeout_s)
        except Exception as exc:  # the sender's I/O thread failed: its books still hold, the run fails
            self._log.exception("frame_stream_finish_failed", error=repr(exc))
            with self._lock:
                self._errors.append(f"the frame stream failed: {exc!r}")
            stats = self._stream.sender.stats()
            return FinishResult(stats.state, None, stats)

    def _close_cameras(self) -> None:
        for camera_profile, camera in self._cameras:
            self._close_camera(camera_profile.name, camera)

    def _close_camera(self, name: str, camera: Camera) -> None:
        try:
            camera.close()
        except AcqdError as exc:
            self._log.error("camera_close_failed", camera=name, error=str(exc))
            with self._lock:
                self._errors.append(f"camera {name!r} could not be closed: {exc}")

    # ---- books, metrics, state ---------------------------------------------------------------------------------

    def _finalize(self, result: FinishResult | None, cause: str) -> None:
        with self._lock:
            aborted = dict(self._aborted)
            abort = self._abort_requested
            errors = list(self._errors)
        summary, state, more_errors = summarize(
            run_id=self.run_id,
            profile=self.profile,
            books=[reader.books for reader in self._readers],
            readers_errors={r.name: r.error for r in self._readers if r.error is not None},
            result=result,
            aborted=aborted,
            abort=abort,
            cause=cause,
            errors=errors,
            duration_s=time.monotonic() - self._began if cause != "start_failed" else 0.0,
            worker_exit=self._stream.worker_exit,
            resumes=None if self.resume is None else self.resume.resumes,
        )
        with self._lock:
            self._errors.extend(more_errors)
            self._summary = summary
            self._finished_at = time.time()
        log = self._log.error if state is RunState.FAILED else self._log.info
        log("run_summary", **summary)
        released = heap.trim()  # the run's frames are gone: their heap pages go back to the system
        if released:
            self._log.info("run_memory_returned", mb=round(released / 1e6, 1))
        notify(self._log, self._observer.on_summary, self.run_id, summary)
        self._set_state(state)
        self._done.set()

    def _set_state(self, state: RunState) -> None:
        with self._lock:
            self._state = state
        notify(self._log, self._observer.on_state, self.status())

    def _on_frame(self, key: str, frame: Frame) -> None:
        self._observer.on_frame(self.run_id, key, frame)

    def _emit_metrics(self, now: float) -> None:
        books = [reader.books for reader in self._readers]
        fields = self._meter.interval(now, books, self._stream.sender.stats(), self.worker_pid)
        with self._lock:
            self._rates = {
                "frames_per_s": fields["frames_in_per_s"],
                "frames_stored_per_s": fields["frames_stored_per_s"],
                "mb_per_s": fields["mb_in_per_s"],
                "mb_stored_per_s": fields["mb_stored_per_s"],
            }
        self._log.info("run_metrics", **fields)
        notify(self._log, self._observer.on_metrics, self.run_id, fields)

    def _counts(self, summary: Mapping[str, Any] | None) -> tuple[dict[str, int], dict[str, int]]:
        """Counts and drops for a status: from the summary once settled, else live from the books and the sender."""
        if summary is not None:
            counts = {"frames_delivered": summary["delivered"], "frames_stored": summary["stored"]}
            counts["frames_in_flight"] = 0
            return counts, dict(summary["dropped"])
        delivered = sum(r.books.delivered for r in self._readers)
        if not self._stream.opened:
            return {"frames_delivered": delivered, "frames_stored": 0, "frames_in_flight": 0}, {}
        stats = self._stream.sender.stats()
        counts = {
            "frames_delivered": delivered,
            "bytes_read": sum(r.books.bytes_read for r in self._readers),
            "frames_stored": stats.frames_stored,
            "frames_in_flight": stats.balance.in_flight,
            "queue_frames": stats.queued_frames,
            "queue_bytes": stats.queued_bytes,
        }
        return counts, stats.balance.dropped.as_dict()
