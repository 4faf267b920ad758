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
- Budgets: ``runs.max_runs`` live runs and ``runs.memory_bytes`` of writer buffers, queues and camera frames
  together; a start that would exceed them is ``unavailable`` (retry later), while a profile that exceeds the
  memory budget on its own, or ``runs.max_queue_bytes`` (:mod:`daemon.profile_catalog`), is ``invalid_profile``.
- During shutdown ``start`` is refused (``unavailable``); :meth:`stop_all` uses the same path as ``stop``.
- Run journal (:mod:`daemon.run_journal`, when given): an entry is written when a run is registered, gets the
  worker's pid once the run started, and is closed with the outcome when the run leaves the live table (written
  after the lock is released). :meth:`RunHost.recover_interrupted` finalises, on its own thread
  (:mod:`daemon.run_recovery`), the stores of the runs a crashed daemon left running; ``status`` lists them as
  ``interrupted``, and a start on a store still being recovered is a ``conflict``.
- Resume (:mod:`daemon.run_resume`): ``resume`` registers a run like ``start`` does, appending to the store of an
  ``interrupted`` run once its recovery is done; the interrupted run is then listed with ``resumed_by`` and cannot
  be resumed again (:class:`~daemon.run_resume.ResumeClaims`, under the lock, and in the journal) unless that
  run failed to start.
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

from daemon.config import RunsConfig
from daemon.errors import AcqdError, ConfigError, ConflictError, NotFoundError, UnavailableError
from daemon.log import LogFormat, get_logger
from daemon.profile import Profile
from daemon.profile_cameras import camera_identity
from daemon.profile_catalog import ProfileCatalog
from daemon.profile_summary import describe_profile, profile_memory_bytes
from daemon.run import Run
from daemon.run_journal import INTERRUPTED, Heartbeat, JournalEntry, RunJournal
from daemon.run_manager import ProfileInfo, ProfileSource, RunState, RunStatus
from daemon.run_observer import RunObserver
from daemon.run_recovery import interrupted_status, recover, tidy_store
from daemon.run_resume import ResumeClaims, check_resumable, log_resumed, resume_profile
from daemon.storage.settings_json import ResumeRequest

log = get_logger("manager")

RunFactory = Callable[..., Run]
_RUN_ID_NAME_CHARS = 48


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
        journal: RunJournal | None = None,
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
        self._journal = journal
        self._ended: list[Run] = []  # runs moved to the history whose journal entry is not closed yet
        self._interrupted: dict[str, JournalEntry] = {}
        self._recovering: set[str] = set()  # stores of interrupted runs still being recovered
        self._recovery: threading.Thread | None = None
        self._claims = ResumeClaims(journal)

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
        return self._register(profile, name, (source.name, source.text), overrides)

    def resume(self, run_id: str, source: ProfileSource | None, overrides: Mapping[str, Any]) -> str:
        """See :mod:`daemon.run_resume`: the interrupted run's profile (or ``source``), appending to its store."""
        entry = self._resumable(run_id)
        profile, source, overrides = resume_profile(self._catalog, entry, source, overrides)
        plan = check_resumable(entry, profile)
        name = source.name if source.name is not None else "inline"
        request = ResumeRequest(entry.run_id, entry.interrupted_at)
        new_id = self._register(profile, name, (source.name, source.text), overrides, request)
        log_resumed(new_id, entry, plan)
        return new_id

    def _register(
        self,
        profile: Profile,
        name: str,
        source: tuple[str | None, str | None],
        overrides: Mapping[str, Any],
        resume: ResumeRequest | None = None,
    ) -> str:
        cameras = frozenset(camera_identity(camera) for camera in profile.cameras)
        memory = profile_memory_bytes(profile)
        self._check_fits(profile, memory)
        with self._lock:
            if resume is not None:
                self._claims.check(resume.resumes, self._interrupted.get(resume.resumes))
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
                **({} if resume is None else {"resume": resume}),
            )
            self._live[run_id] = _Hosted(run, name, cameras, profile.stream.store_path, memory)
            if resume is not None:
                self._claims.claim(resume, run_id)
            starter = threading.Thread(target=self._start_run, args=(run,), name=f"acqd-start-{run_id}", daemon=True)
            self._starters[run_id] = starter
        if self._journal is not None:
            resumes = None if resume is None else resume.resumes
            entry = JournalEntry.for_run(run_id, profile, source=source, overrides=overrides, resumes=resumes)
            self._journal.begin(entry)
            if resumes is not None:  # before the run starts: a failed start releases it after this
                self._journal.resumed(resumes, run_id)
        log.info(
            "run_registered", run_id=run_id, profile=name, cameras=sorted(cameras), store=profile.stream.store_path
        )
        starter.start()
        return run_id

    def _resumable(self, run_id: str) -> JournalEntry:
        """The journal entry of ``run_id`` if it may be resumed now, else NotFoundError / ConflictError."""
        with self._lock:
            self._sweep_locked()  # a resume of it that failed to start is released
            entry = self._interrupted.get(run_id)
            recovering = entry is not None and entry.store in self._recovering
            hosted = self._live.get(run_id)
            finished = next((run for run in self._history if run.run_id == run_id), None)
        if recovering:
            raise ConflictError(f"resume: run {run_id!r} is still being recovered after the crash; retry later.")
        if hosted is not None or finished is not None:
            run = hosted.run if hosted is not None else finished
            assert run is not None
            state = run.status().state.value
            raise ConflictError(f"resume: run {run_id!r} is {state}; only an interrupted run can be resumed.")
        if entry is None and self._journal is not None:
            entry = self._journal.read(run_id)
        if entry is None:
            raise NotFoundError(f"resume: no run with id {run_id!r} (neither live, finished nor in the journal).")
        if entry.state != INTERRUPTED:
            raise ConflictError(f"resume: run {run_id!r} is {entry.state}; only an interrupted run can be resumed.")
        with self._lock:
            self._claims.check(run_id, self._interrupted.get(run_id))
        return entry

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
            interrupted = list(self._interrupted.values())
            resumed = self._claims.resumed_by()
        self._close_journal_entries()
        statuses = [run.status() for run in live] + [run.status() for run in reversed(finished)]
        return statuses + [interrupted_status(entry, resumed.get(entry.run_id)) for entry in interrupted]

    def reload(self) -> Mapping[str, Any]:
        return self._catalog.reload()

    # serve loop ----------------------------------------------------------------------------------------------------
    def heartbeat(self) -> None:
        """Note in the journal that this daemon is alive (every serve-loop tick; see :mod:`daemon.run_journal`)."""
        if self._journal is not None:
            self._journal.heartbeat()

    def sweep(self) -> tuple[int, int]:
        """Move finished runs to the history; returns (live runs, finished runs kept)."""
        with self._lock:
            self._sweep_locked()
            counts = len(self._live), len(self._history)
        self._close_journal_entries()
        return counts

    def recover_interrupted(self) -> list[str]:
        """Finalise, on a background thread, the stores of the runs the journal says a crash interrupted; their ids."""
        if self._journal is None:
            return []
        entries = self._journal.unfinished()
        last_alive = self._journal.last_alive()  # before this daemon's first heartbeat replaces it
        self._journal.prune()
        with self._lock:
            for entry in entries:
                self._interrupted[entry.run_id] = entry
                self._recovering.add(entry.store)
        if entries:
            log.warning("runs_interrupted", runs=[entry.run_id for entry in entries])
            self._recovery = threading.Thread(
                target=self._recover_all,
                args=(self._journal, entries, last_alive),
                name="acqd-recovery",
                daemon=True,
            )
            self._recovery.start()
        return [entry.run_id for entry in entries]

    def wait_recovered(self, timeout_s: float) -> bool:
        """True once the recovery started by :meth:`recover_interrupted` (if any) is done."""
        thread = self._recovery
        if thread is not None:
            thread.join(timeout_s)
        return thread is None or not thread.is_alive()

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
                f"{profile.file}: the run needs {memory} bytes of writer buffers, queues and camera frames (acqd "
                f"validate shows them); this daemon's budget for all runs together is {budget} bytes "
                "(runs.memory_bytes)."
            )

    def _admit(self, profile: Profile, cameras: frozenset[str], memory: int) -> None:
        """Raise unless a run of ``profile`` may start now; called with the lock held."""
        if self._closing:
            raise UnavailableError("start: the daemon is shutting down.")
        self._sweep_locked()
        if profile.stream.store_path in self._recovering:
            raise ConflictError(f"store {profile.stream.store_path!r} is being recovered after a crash; retry later.")
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
                self._ended.append(hosted.run)
                run = hosted.run
                summary = run.summary or {}
                self._claims.release_if_start_failed(run.run_id, run.resume, summary.get("cause"))

    def _start_run(self, run: Run) -> None:
        try:
            run.start()
        except AcqdError as exc:  # the run logged it, recorded it in its errors and ended in state failed
            log.debug("run_start_refused", run_id=run.run_id, error_type=type(exc).__name__)
        except Exception as exc:  # a bug in a run must not take the daemon down: log it with its traceback
            log.error("run_start_crashed", run_id=run.run_id, exc_info=exc)
        if self._journal is not None:
            self._journal.worker(run.run_id, run.worker_pid)

    def _close_journal_entries(self) -> None:
        """Settle the runs that left the live table (outside the lock: the journal fsyncs). A run that did not
        finish cleanly may have left stale objects (its worker lost or failed mid-write): its store is tidied on a
        thread first (:func:`~daemon.run_recovery.tidy_store`), then its entry is closed."""
        with self._lock:
            ended, self._ended = self._ended, []
        for run in ended:
            if run.status().state is RunState.FINISHED:
                self._close_entry(run)
            else:
                threading.Thread(target=self._close_entry, args=(run, True), name="acqd-tidy", daemon=True).start()

    def _close_entry(self, run: Run, tidy: bool = False) -> None:
        status = run.status()
        counts = {**status.counts, **{f"dropped_{reason}": n for reason, n in status.drops.items()}}
        if tidy:
            try:
                counts.update(tidy_store(JournalEntry.for_run(run.run_id, run.profile)))
            except (AcqdError, OSError) as exc:
                log.error("run_store_tidy_failed", run_id=run.run_id, store=status.store, error=str(exc))
        if self._journal is not None:
            self._journal.end(run.run_id, status.state.value, counts, status.errors)

    def _recover_all(self, journal: RunJournal, entries: Sequence[JournalEntry], last_alive: Heartbeat | None) -> None:
        for entry in entries:
            try:
                recovered = recover(journal, entry, last_alive=last_alive)
            except Exception as exc:  # a bug in recovery must not take the daemon down: logged with its traceback
                log.error("run_recovery_crashed", run_id=entry.run_id, exc_info=exc)
                recovered = entry
            with self._lock:
                self._interrupted[entry.run_id] = recovered
                self._recovering.discard(entry.store)

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
