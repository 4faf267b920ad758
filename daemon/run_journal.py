"""The run journal: one small JSON file per run in the daemon's state folder, so a restarted daemon knows which
runs a crash interrupted.

Layout: ``<state_dir>/runs/<run_id>.json`` holding :class:`JournalEntry` — the run id, profile, store, array keys,
Zarr version, the S3 settings (never credentials: :class:`~daemon.storage.s3_settings.S3Settings` holds none), the
daemon's pid and, once spawned, the storage worker's pid. It is written when a run is registered (``state:
running``) and rewritten when the run ends (``state``: its outcome). A file still saying ``running`` when a daemon
starts belongs to a run the previous daemon never saw end: :mod:`daemon.run_recovery` finalises its store and the
file is rewritten as ``interrupted`` with what the store claims.

The state folder is ``$STATE_DIRECTORY`` (systemd's ``StateDirectory=``; its first entry), else the daemon's
runtime folder (private, one daemon each; it survives a crash of the daemon but not a reboot); ``runs/`` is created
0700.

Design notes:
- Files are written to a temporary name, fsynced and renamed into place (then the folder fsynced), so a crash
  leaves either the old or the new entry, never half of one. A file that does not parse is skipped with a warning.
- Finished entries are pruned to the newest ``keep`` when the journal opens; ``interrupted`` ones are kept the same
  way (they are history, already recovered).
- Journal I/O failures are logged and never fail a run: the journal is a recovery aid, not part of the data.
- Resume (:meth:`~daemon.manager.RunHost.resume`): an entry also keeps how its profile was given (``source_name``
  or ``source_text``, and ``overrides``) so a resume can rebuild it; a resumed run's entry says ``resumes: <id>``,
  and the interrupted run's entry gets ``resumed_by: <new id>`` (a run is resumed at most once; a resume whose run
  failed to start stored nothing and is taken back). Entries written
  before these fields existed read with them empty (the format stays 1).
- Heartbeat: a serving daemon touches ``runs/daemon.alive`` (:meth:`RunJournal.heartbeat`, at start-up and every
  main-loop tick: one ``utime``, not fsynced) after writing its pid into it once. The next daemon reads it
  (:meth:`RunJournal.last_alive`) before beating itself: when the crashed daemon was last seen alive, which
  recovery records as an interrupted run's ``interrupted_at`` (see :func:`interrupted_at`). A daemon crash leaves
  the time exact to a tick; a power cut may lose the last few seconds of it (the file system's commit interval).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from daemon.log import get_logger
from daemon.profile import Profile
from daemon.storage.file_store import fsync_dir

STATE_ENV = "STATE_DIRECTORY"
RUNS_FOLDER = "runs"
RUNNING = "running"
INTERRUPTED = "interrupted"
ALIVE_FILE = "daemon.alive"
FORMAT = 1
DEFAULT_KEEP = 256

log = get_logger("daemon.run_journal")


def default_state_dir(runtime_dir: Path, environ: Mapping[str, str] | None = None) -> Path:
    """``$STATE_DIRECTORY`` (first entry), else the runtime folder."""
    env = os.environ if environ is None else environ
    systemd = env.get(STATE_ENV, "").split(":")[0]
    return Path(systemd) if systemd else runtime_dir


@dataclass(frozen=True, slots=True)
class JournalEntry:
    """One run as the journal records it (see the module notes)."""

    run_id: str
    profile: str
    store: str
    keys: tuple[str, ...]
    version: int
    started_at: float
    daemon_pid: int
    s3: Mapping[str, Any] | None = None
    worker_pid: int | None = None
    state: str = RUNNING
    finished_at: float | None = None
    counts: Mapping[str, int] = field(default_factory=dict)
    errors: tuple[str, ...] = ()
    source_name: str | None = None
    source_text: str | None = None
    overrides: Mapping[str, Any] = field(default_factory=dict)
    resumes: str | None = None
    resumed_by: str | None = None
    interrupted_at: float | None = None  # an interrupted run: when its daemon was last seen alive (None: unknown)

    def to_json(self) -> dict[str, Any]:
        doc = dataclasses.asdict(self)
        doc["keys"] = list(self.keys)
        doc["errors"] = list(self.errors)
        return {"format": FORMAT, **doc}

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> JournalEntry:
        if doc.get("format") != FORMAT:
            raise ValueError(f"format must be {FORMAT}. Got {doc.get('format')!r} instead.")
        values = {name: doc[name] for name in (f.name for f in dataclasses.fields(cls)) if name in doc}
        values["keys"] = tuple(values.get("keys", ()))
        values["errors"] = tuple(values.get("errors", ()))
        return cls(**values)

    @classmethod
    def for_run(
        cls,
        run_id: str,
        profile: Profile,
        *,
        source: tuple[str | None, str | None] = (None, None),
        overrides: Mapping[str, Any] | None = None,
        resumes: str | None = None,
    ) -> JournalEntry:
        """The entry of a run starting now; ``source`` is the profile's (name, inline text) as requested."""
        stream = profile.stream
        return cls(
            run_id=run_id,
            profile=profile.file,
            store=stream.store_path,
            keys=tuple(camera.array.output_key for camera in profile.cameras),
            version=int(stream.version_enum.value),
            started_at=time.time(),
            daemon_pid=os.getpid(),
            s3=None if stream.s3 is None else dataclasses.asdict(stream.s3),
            source_name=source[0],
            source_text=source[1],
            overrides=dict(overrides or {}),
            resumes=resumes,
        )


@dataclass(frozen=True, slots=True)
class Heartbeat:
    """The last sign of life of a daemon: its pid and the time of its last beat (seconds since the epoch)."""

    pid: int
    at: float


def interrupted_at(entry: JournalEntry, beat: Heartbeat | None) -> float | None:
    """When ``entry``'s run was interrupted, as well as it is known: its daemon's last heartbeat (not before the run
    started); None when the heartbeat is another daemon's or missing."""
    if beat is None or beat.pid != entry.daemon_pid:
        return None
    return max(entry.started_at, beat.at)


def make_private_folders(folder: Path) -> None:
    """Create ``folder`` and every missing parent with mode 0700 whatever the umask (existing ones are left as
    they are): a parent another user could write would let them swap ``runs/`` for forged entries."""
    missing = []
    while not folder.exists():
        missing.append(folder)
        folder = folder.parent
    for path in reversed(missing):
        path.mkdir(mode=0o700, exist_ok=True)
        os.chmod(path, 0o700)


class RunJournal:
    """The ``runs/`` folder of a state folder: begin, note the worker, end; list what a crash left running."""

    def __init__(self, state_dir: Path, *, keep: int = DEFAULT_KEEP) -> None:
        self.folder = state_dir / RUNS_FOLDER
        self._keep = keep
        self._beating = False  # this journal's daemon wrote its pid into the heartbeat file
        self._beat_failed = False
        make_private_folders(self.folder)
        os.chmod(self.folder, 0o700)

    def path(self, run_id: str) -> Path:
        return self.folder / f"{run_id}.json"

    def begin(self, entry: JournalEntry) -> None:
        self._write(entry)

    def worker(self, run_id: str, pid: int | None) -> None:
        entry = self.read(run_id)
        if entry is not None and pid is not None:
            self._write(dataclasses.replace(entry, worker_pid=pid))

    def end(
        self,
        run_id: str,
        state: str,
        counts: Mapping[str, int],
        errors: tuple[str, ...] = (),
        *,
        interrupted_at: float | None = None,
    ) -> None:
        entry = self.read(run_id)
        if entry is not None:
            ended = dataclasses.replace(
                entry,
                state=state,
                finished_at=time.time(),
                counts=dict(counts),
                errors=errors,
                interrupted_at=interrupted_at,
            )
            self._write(ended)

    def heartbeat(self) -> None:
        """Note that this daemon is alive now (see the module notes); a failure is logged once, never raised."""
        path = self.folder / ALIVE_FILE
        try:
            if self._beating:
                with contextlib.suppress(FileNotFoundError):  # removed meanwhile: written again below
                    os.utime(path, follow_symlinks=False)
                    return
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
            try:
                os.write(fd, str(os.getpid()).encode())
            finally:
                os.close(fd)
            self._beating = True
        except OSError as exc:
            self._beating = False
            if not self._beat_failed:
                self._beat_failed = True
                log.warning("run_journal_heartbeat_failed", path=str(path), error=str(exc))

    def last_alive(self) -> Heartbeat | None:
        """The heartbeat a daemon left (read it before :meth:`heartbeat` overwrites it); None when there is none."""
        path = self.folder / ALIVE_FILE
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
            try:
                pid = int(os.read(fd, 32).decode().strip())
                at = os.fstat(fd).st_mtime
            finally:
                os.close(fd)
        except (OSError, ValueError):
            return None
        return Heartbeat(pid, at)

    def resumed(self, run_id: str, by: str | None) -> None:
        """Note that run ``by`` resumes the interrupted run ``run_id`` (None: its resume failed to start, so it
        may be resumed again)."""
        entry = self.read(run_id)
        if entry is not None:
            self._write(dataclasses.replace(entry, resumed_by=by))

    def read(self, run_id: str) -> JournalEntry | None:
        return _read(self.path(run_id))

    def entries(self) -> list[JournalEntry]:
        """Every readable entry, oldest first."""
        found = [_read(path) for path in sorted(self.folder.glob("*.json"))]
        return sorted((e for e in found if e is not None), key=lambda e: e.started_at)

    def unfinished(self) -> list[JournalEntry]:
        """Entries still ``running`` that no live daemon owns: the runs a crash interrupted."""
        return [e for e in self.entries() if e.state == RUNNING and not _daemon_alive(e.daemon_pid)]

    def prune(self) -> int:
        """Remove all but the newest ``keep`` ended entries; returns how many were removed."""
        ended = [e for e in self.entries() if e.state != RUNNING]
        removed = 0
        for entry in ended[: max(0, len(ended) - self._keep)]:
            self.path(entry.run_id).unlink(missing_ok=True)
            removed += 1
        return removed

    def _write(self, entry: JournalEntry) -> None:
        path = self.path(entry.run_id)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
            try:
                os.write(fd, json.dumps(entry.to_json(), sort_keys=True).encode())
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, path)
            fsync_dir(self.folder)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            log.error("run_journal_write_failed", run_id=entry.run_id, path=str(path), error=str(exc))


def _daemon_alive(pid: int) -> bool:
    """``pid`` is this process or another live acqd process (a reused pid of another program is not)."""
    if pid == os.getpid():
        return True
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return b"acqd" in cmdline or b"daemon.cli" in cmdline


def _read(path: Path) -> JournalEntry | None:
    try:
        return JournalEntry.from_json(json.loads(path.read_text()))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, TypeError, KeyError) as exc:
        log.warning("run_journal_entry_unreadable", path=str(path), error=str(exc))
        return None
