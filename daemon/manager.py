"""The daemon's run manager: hosts :class:`~daemon.run.Run` s behind the control plane (the ``RunManager`` role).

It holds at most one run per camera: a camera is known by its identity (:func:`camera_identity`: a simulated
camera's name, or a GenICam camera's producers and device selector), and so is a store (two live runs never write
the same store). Several runs go on at once when they share neither. ``start`` registers the run and returns its
id at once; the run opens its cameras on its own starter thread and reports on the observer (the events socket)
like any later transition. Finished runs are kept for ``status`` in a bounded history.

Design notes (threads, see :mod:`daemon.run_manager`):
- ``runs``, ``stop`` and ``abort`` are called on the control loop thread: they only take snapshots
  (``Run.status`` never blocks) or *request* transitions. ``start``, ``validate``, ``profiles`` and ``reload``
  run on the control worker thread. The serve main loop calls :meth:`RunHost.sweep` and the shutdown methods. One
  lock guards the tables; no Run method is called while it is held except the non-blocking ``status``/``wait(0)``.
- A run leaves the live table (freeing its cameras and store) when it reports a terminal state and ``wait(0)``
  says it is finished, checked by :meth:`sweep` and before every admission decision, so a finished run never
  blocks a new one.
- Budgets: ``runs.max_runs`` live runs and ``runs.memory_bytes`` of writer buffers and queues together; a start
  that would exceed them is ``unavailable`` (retry later), while a profile that exceeds the memory budget on its
  own, or ``runs.max_queue_bytes`` (:mod:`daemon.profile_catalog`), is ``invalid_profile``.
- During shutdown ``start`` is refused (``unavailable``); :meth:`stop_all` uses the same path as ``stop``.
"""

from __future__ import annotations

import collections
import secrets
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from daemon.cameras.settings import SimulatedCameraSettings
from daemon.config import RunsConfig
from daemon.errors import AcqdError, ConfigError, ConflictError, NotFoundError, UnavailableError
from daemon.log import LogFormat, get_logger
from daemon.profile import Profile
from daemon.profile_cameras import CameraProfile
from daemon.profile_catalog import ProfileCatalog
from daemon.profile_summary import summarize
from daemon.run import Run
from daemon.run_manager import ProfileInfo, ProfileSource, RunStatus
from daemon.run_observer import RunObserver

log = get_logger("manager")

RunFactory = Callable[..., Run]
_RUN_ID_NAME_CHARS = 48


def camera_identity(camera: CameraProfile) -> str:
    """What makes two cameras the same device: the simulated camera's name, or GenICam producers + selector."""
    settings = camera.settings
    if isinstance(settings, SimulatedCameraSettings):
        return f"simulated:{camera.name}"
    producers = ",".join(sorted(str(Path(p).resolve()) for p in settings.producers)) or "$GENICAM_GENTL64_PATH"
    return f"genicam:{producers}:{settings.select.describe()}"


def profile_memory_bytes(profile: Profile) -> int:
    """Writer buffers plus queue budget of every camera of ``profile`` (as ``acqd validate`` reports them)."""
    return sum(array.memory_bytes for array in summarize(profile))


@dataclass(frozen=True, slots=True)
class _Hosted:
    run: Run
    profile_name: str
    cameras: frozenset[str]
    store: str
    memory_bytes: int


class RunHost:
    """Implements :class:`~daemon.run_manager.RunManager` over real runs (see the module notes)."""

    def __init__(
        self,
        catalog: ProfileCatalog,
        runs: RunsConfig,
        *,
        observer: RunObserver | None = None,
        runtime_dir: Path | None = None,
        log_format: LogFormat = "json",
        log_level: str = "INFO",
        run_factory: RunFactory = Run,
    ) -> None:
        self._catalog = catalog
        self._config = runs
        self._observer = observer if observer is not None else RunObserver()
        self._runtime_dir = runtime_dir
        self._log_format = log_format
        self._log_level = log_level
        self._run_factory = run_factory
        self._lock = threading.Lock()
        self._live: dict[str, _Hosted] = {}
        self._history: collections.deque[Run] = collections.deque(maxlen=runs.history)
        self._starters: dict[str, threading.Thread] = {}
        self._closing = False

    # RunManager ----------------------------------------------------------------------------------------------------
    def profiles(self) -> Sequence[ProfileInfo]:
        return self._catalog.infos()

    def validate(self, source: ProfileSource, overrides: Mapping[str, Any]) -> Mapping[str, Any]:
        profile = self._catalog.load(source, overrides)
        self._check_fits(profile, profile_memory_bytes(profile))
        return describe_profile(profile)

    def start(self, source: ProfileSource, overrides: Mapping[str, Any]) -> str:
        profile = self._catalog.load(source, overrides)
        name = source.name if source.name is not None else "inline"
        cameras = frozenset(camera_identity(camera) for camera in profile.cameras)
        memory = profile_memory_bytes(profile)
        self._check_fits(profile, memory)
        with self._lock:
            self._admit(profile, cameras, memory)
            run_id = self._new_run_id(name)
            run = self._run_factory(
                profile,
                run_id=run_id,
                observer=self._observer,
                metrics_interval_s=self._config.metrics_interval_s,
                runtime_dir=self._runtime_dir,
                log_format=self._log_format,
                log_level=self._log_level,
            )
            self._live[run_id] = _Hosted(run, name, cameras, profile.stream.store_path, memory)
            starter = threading.Thread(target=self._start_run, args=(run,), name=f"acqd-start-{run_id}", daemon=True)
            self._starters[run_id] = starter
        log.info(
            "run_registered", run_id=run_id, profile=name, cameras=sorted(cameras), store=profile.stream.store_path
        )
        starter.start()
        return run_id

    def stop(self, run_id: str) -> RunStatus:
        run = self._find(run_id, "stop")
        run.request_stop()
        return run.status()

    def abort(self, run_id: str) -> RunStatus:
        run = self._find(run_id, "abort")
        run.request_abort()
        return run.status()

    def runs(self) -> Sequence[RunStatus]:
        with self._lock:
            self._sweep_locked()
            live = [hosted.run for hosted in self._live.values()]
            finished = list(self._history)
        return [run.status() for run in live] + [run.status() for run in reversed(finished)]

    def reload(self) -> Mapping[str, Any]:
        return self._catalog.reload()

    # serve loop ----------------------------------------------------------------------------------------------------
    def sweep(self) -> tuple[int, int]:
        """Move finished runs to the history; returns (live runs, finished runs kept)."""
        with self._lock:
            self._sweep_locked()
            return len(self._live), len(self._history)

    def begin_shutdown(self) -> None:
        """Refuse new runs from now on."""
        with self._lock:
            self._closing = True

    def stop_all(self) -> list[str]:
        """Request a graceful stop of every live run (the same path as ``stop``); returns their ids."""
        return self._request_all(Run.request_stop)

    def abort_all(self) -> list[str]:
        return self._request_all(Run.request_abort)

    def wait_all(self, timeout_s: float) -> bool:
        """Wait until every live run has finished (and its starter thread returned); True when all did."""
        deadline = time.monotonic() + timeout_s
        with self._lock:
            runs = [hosted.run for hosted in self._live.values()]
            starters = list(self._starters.values())
        for thread in starters:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))
        done = all(run.wait(max(0.0, deadline - time.monotonic())) for run in runs)
        self.sweep()
        return done and not any(thread.is_alive() for thread in starters)

    # internals -----------------------------------------------------------------------------------------------------
    def _check_fits(self, profile: Profile, memory: int) -> None:
        """Raise ConfigError when a run of ``profile`` could never start here: it alone exceeds the memory budget."""
        budget = self._config.memory_bytes
        if isinstance(budget, int) and memory > budget:
            raise ConfigError(
                f"{profile.file}: the run needs {memory} bytes of writer buffers and queues (acqd validate shows "
                f"them); this daemon's budget for all runs together is {budget} bytes (runs.memory_bytes)."
            )

    def _admit(self, profile: Profile, cameras: frozenset[str], memory: int) -> None:
        """Raise unless a run of ``profile`` may start now; called with the lock held."""
        if self._closing:
            raise UnavailableError("start: the daemon is shutting down.")
        self._sweep_locked()
        for run_id, hosted in self._live.items():
            shared = sorted(cameras & hosted.cameras)
            if shared:
                raise ConflictError(f"camera {shared[0]!r} is in use by run {run_id!r} ({hosted.profile_name}).")
            if hosted.store == profile.stream.store_path:
                raise ConflictError(f"store {hosted.store!r} is being written by run {run_id!r}.")
        if len(self._live) >= self._config.max_runs:
            raise UnavailableError(f"start: {len(self._live)} runs are live; the limit is {self._config.max_runs}.")
        budget = self._config.memory_bytes
        used = sum(hosted.memory_bytes for hosted in self._live.values())
        if isinstance(budget, int) and used + memory > budget:
            raise UnavailableError(
                f"start: the run needs {memory} bytes of buffers and queues; {used} of the {budget}-byte budget "
                "(runs.memory_bytes) are in use by live runs."
            )

    def _sweep_locked(self) -> None:
        for run_id, hosted in list(self._live.items()):
            starter = self._starters.get(run_id)
            if starter is not None and starter.is_alive():
                continue
            if hosted.run.status().state.terminal and hosted.run.wait(0):
                del self._live[run_id]
                self._starters.pop(run_id, None)
                self._history.append(hosted.run)

    def _start_run(self, run: Run) -> None:
        try:
            run.start()
        except AcqdError as exc:  # the run logged it, recorded it in its errors and ended in state failed
            log.debug("run_start_refused", run_id=run.run_id, error_type=type(exc).__name__)
        except Exception as exc:  # a bug in a run must not take the daemon down: log it with its traceback
            log.error("run_start_crashed", run_id=run.run_id, exc_info=exc)

    def _find(self, run_id: str, command: str) -> Run:
        with self._lock:
            hosted = self._live.get(run_id)
            if hosted is not None:
                return hosted.run
            for run in self._history:
                if run.run_id == run_id:
                    return run
        raise NotFoundError(f"{command}: no run with id {run_id!r}.")

    def _request_all(self, action: Callable[[Run], None]) -> list[str]:
        with self._lock:
            runs = [hosted.run for hosted in self._live.values()]
        for run in runs:
            action(run)
        return [run.run_id for run in runs]

    def _new_run_id(self, name: str) -> str:
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
        while True:
            run_id = f"{stamp}-{name[:_RUN_ID_NAME_CHARS]}-{secrets.token_hex(3)}"
            if run_id not in self._live and all(run.run_id != run_id for run in self._history):
                return run_id


def describe_profile(profile: Profile) -> dict[str, Any]:
    """The JSON ``validate`` answers: store, stop condition, and per camera its identity and array."""
    acquisition = profile.acquisition
    arrays = summarize(profile)
    return {
        "file": profile.file,
        "store": profile.stream.store_path,
        "version": int(profile.stream.version_enum.value),
        "stop": {
            "frames": acquisition.frames,
            "duration_s": acquisition.duration_s,
            "until_stopped": acquisition.until_stopped,
        },
        "memory_bytes": sum(array.memory_bytes for array in arrays),
        "cameras": [
            {
                "name": camera.name,
                "driver": camera.driver,
                "identity": camera_identity(camera),
                "output_key": array.output_key,
                "dtype": array.dtype,
                "shape": list(array.shape),
                "chunk_shape": list(array.chunk_shape),
                "shard_shape": None if array.shard_shape is None else list(array.shard_shape),
                "frames": array.frames,
                "frame_rate_hz": array.frame_rate_hz,
                "mb_per_s": array.mb_per_s,
            }
            for camera, array in zip(profile.cameras, arrays, strict=True)
        ],
    }
