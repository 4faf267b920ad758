"""A run's way to storage: the frame sender, its private endpoint, and the storage worker at the other end.

Usage (the run supervisor)::

    stream = RunStream(profile, run_id, ...)
    stream.open(start_timeout_s)      # bind, spawn the worker (or wait for an external one), wait until it is ready
    stream.sender.offer(frame, key)   # camera threads
    stream.discard()                  # abort: drop the queue, counted aborted
    result = stream.finish(timeout_s) # END -> the worker finalises the store -> FINAL; nothing in flight after
    stream.close(result)              # stop the worker process, close the socket, remove the endpoint folder

Design notes:
- One sender, one queue, one worker for all cameras of the run (frames tagged with their array's key). The
  queue holds ``acquisition.queue_bytes`` per camera. BLOCK mode (the camera waits for room) only when the profile
  asks for it and every camera is simulated: a real camera is never blocked by storage.
- The spawned worker's exit is watched (:class:`~daemon.run_worker.WorkerProcess`); an exit before FINAL is
  reported to the sender as ``worker_lost`` after a short grace, so acknowledgements already on the socket still
  count. An external worker (``storage.worker_endpoint``) is watched by the sender's liveness check only.
- :meth:`open` returns once the worker granted credit, i.e. opened its store (and cleared an ``overwrite`` one,
  which can take seconds): the run starts its cameras only then. It raises StorageError when no worker is ready in
  time, the worker could not open its store (its error), or it exits first; :meth:`close` is idempotent and
  bounded.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from daemon.errors import StorageError
from daemon.ipc.endpoint import PrivateIpcFolder
from daemon.ipc.frame_queue import QueueMode
from daemon.ipc.frame_sender import FrameSender
from daemon.ipc.stream_settings import SenderSettings
from daemon.ipc.stream_status import FinishResult, SenderState
from daemon.log import get_logger
from daemon.profile import Profile
from daemon.run_outcome import describe_exit
from daemon.run_worker import WorkerProcess
from daemon.storage.settings_json import ResumeRequest, worker_config

POLL_S = 0.1
WORKER_EXIT_GRACE_S = 0.5
WORKER_EXIT_TIMEOUT_S = 30.0
LOST_WORKER_EXIT_TIMEOUT_S = 2.0


def queue_mode(profile: Profile) -> QueueMode:
    """BLOCK when the profile asks for it and every camera is simulated, else DROP."""
    simulated = all(camera.driver == "simulated" for camera in profile.cameras)
    return QueueMode.BLOCK if profile.acquisition.on_queue_full == "block" and simulated else QueueMode.DROP


class RunStream:
    """The sender, its endpoint and the worker of one run (see the module notes)."""

    def __init__(
        self,
        profile: Profile,
        run_id: str,
        *,
        runtime_dir: Path | None,
        log_format: str,
        log_level: str,
        on_worker_exit: Callable[[], None],
        resume: ResumeRequest | None = None,
    ) -> None:
        self._profile = profile
        self._resume = resume
        self._run_id = run_id
        self._runtime_dir = runtime_dir
        self._log_format, self._log_level = log_format, log_level
        self._on_worker_exit = on_worker_exit
        self._log = get_logger("daemon.run_stream", run_id=run_id)
        self._folder: PrivateIpcFolder | None = None
        self._sender: FrameSender | None = None
        self._worker: WorkerProcess | None = None
        self._closed = False

    @property
    def sender(self) -> FrameSender:
        if self._sender is None:
            raise StorageError("the run's frame stream is not open.")
        return self._sender

    @property
    def opened(self) -> bool:
        return self._sender is not None

    @property
    def connected(self) -> bool:
        """A worker said HELLO (and was welcomed)."""
        return self._sender is not None and self._sender.stats().worker is not None

    @property
    def worker_pid(self) -> int | None:
        return None if self._worker is None else self._worker.pid

    @property
    def worker_exit(self) -> int | None:
        """The spawned worker's exit code once it exited (None while running, or for an external worker)."""
        return None if self._worker is None else self._worker.returncode

    def open(self, start_timeout_s: float) -> None:
        """Bind the sender, start (or wait for) the worker, and return once its store is ready (its first credit)."""
        profile = self._profile
        mode = queue_mode(profile)
        if profile.acquisition.on_queue_full == "block" and mode is QueueMode.DROP:
            self._log.warning("queue_block_refused", reason="a real camera is never blocked by storage: drop mode")
        if profile.worker_endpoint is not None:
            endpoint = profile.worker_endpoint
        else:
            self._folder = PrivateIpcFolder(self._runtime_dir)
            endpoint = self._folder.endpoint
        settings = SenderSettings(
            endpoint=endpoint,
            run_id=self._run_id,
            config=worker_config(profile.stream, resume=self._resume),
            queue_max_bytes=profile.acquisition.queue_bytes * len(profile.cameras),
            queue_mode=mode,
        )
        self._sender = FrameSender(settings)
        if profile.worker_endpoint is None:
            self._worker = WorkerProcess(
                self._sender.endpoint,
                run_id=self._run_id,
                log_format=self._log_format,
                log_level=self._log_level,
                on_exit=self._worker_exited,
            )
        else:
            self._log.info("waiting_for_worker", endpoint=self._sender.endpoint, command="acqd worker --connect")
        self._await_worker(self._sender, start_timeout_s)

    def _await_worker(self, sender: FrameSender, timeout_s: float) -> None:
        """Wait for the worker's HELLO, then for its first credit (its store is open and, if asked, cleared): the
        cameras start only then, so no frame waits on a store being prepared."""
        deadline = time.monotonic() + timeout_s
        while sender.wait_for_worker(POLL_S) is None:
            self._check_worker("before connecting")
            if time.monotonic() > deadline:
                raise StorageError(f"no storage worker connected to {sender.endpoint} within {timeout_s} s.")
        began = time.monotonic()
        while not sender.wait_until_ready(POLL_S):
            stats = sender.stats()
            if stats.state is SenderState.WORKER_LOST:
                summary = sender.lost_summary or {}
                if summary.get("error"):
                    raise StorageError(f"the storage worker could not open the store: {summary['error']}")
                raise StorageError(
                    f"the storage worker was lost ({stats.lost_cause}) before its store was ready; see its log lines."
                )
            self._check_worker("before its store was ready")
            if time.monotonic() > deadline:
                raise StorageError(
                    f"the storage worker connected but its store {self._profile.stream.store_path} was not ready "
                    f"within {timeout_s} s (opening it, or clearing the old one for overwrite); try again, or "
                    "remove the old store first."
                )
        self._log.info("storage_worker_ready", wait_s=round(time.monotonic() - began, 3))

    def _check_worker(self, when: str) -> None:
        worker = self._worker
        if worker is not None and worker.exited:
            raise StorageError(
                f"the storage worker exited ({describe_exit(worker.returncode)}) {when}; see its log lines."
            )

    def _worker_exited(self, code: int) -> None:
        """The worker process ended (watcher thread): if the stream is not over, the worker is lost."""
        sender = self._sender
        if sender is not None:
            deadline = time.monotonic() + WORKER_EXIT_GRACE_S  # let acknowledgements already sent arrive
            while sender.stats().state not in (SenderState.FINISHED, SenderState.WORKER_LOST):
                if time.monotonic() > deadline:
                    sender.worker_lost(f"worker_exited: {describe_exit(code)}")
                    break
                time.sleep(0.02)
        self._on_worker_exit()

    def discard(self) -> list[tuple[int, str]]:
        """Drop every queued frame (counted ``aborted``); their ``(frame_id, key)``."""
        return [] if self._sender is None else self._sender.discard_queued()

    def finish(self, timeout_s: float) -> FinishResult | None:
        """END, then wait for FINAL (or the worker lost); None if the stream was never opened.

        Raises what stopped the sender's I/O thread (its books still hold: see ``sender.stats()``)."""
        return None if self._sender is None else self._sender.finish(timeout_s)

    def close(self, result: FinishResult | None) -> None:
        """Stop the worker (bounded), close the sender and remove the endpoint folder. Idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._worker is not None:
            lost = result is None or result.state is not SenderState.FINISHED
            self._worker.stop(LOST_WORKER_EXIT_TIMEOUT_S if lost else WORKER_EXIT_TIMEOUT_S)
        if self._sender is not None:
            self._sender.close()
        if self._folder is not None:
            self._folder.close()
