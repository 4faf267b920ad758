"""Crash recovery: finalise the stores of runs a crashed daemon left ``running`` in the run journal.

For each such entry (:meth:`~daemon.run_journal.RunJournal.unfinished`), :func:`recover` :

1. waits (bounded) for the run's orphaned storage worker to exit: it notices the sender is gone (liveness timeout)
   and closes the store on its own, which is the best finalisation there is; only then is the store touched;
2. a local store: removes the stale ``*.partial`` / ``*.tmp`` files under the store folder (objects never renamed
   into place: the metadata never claims them);
3. an ``s3://`` store: aborts the multipart uploads left under the store's prefix and, when the profile staged
   (``s3.staging_dir``), uploads what the staging journal still holds (:func:`~daemon.storage.staged_store.
   resume_uploads` semantics, for this store only);
4. reads what the store claims: per array, the level-0 frames (``shape[0]``) and the frame-table rows;
5. rewrites the entry as ``interrupted`` with those counts (``frames_claimed``, ``table_rows``, ``partial_removed``,
   ``uploads_aborted``), any error met, and ``interrupted_at``: when the crashed daemon was last seen alive (its
   heartbeat, :func:`~daemon.run_journal.interrupted_at`), else None; ``finished_at`` is when recovery ended.

Design notes:
- The store's metadata is already true while a run goes on (the engine claims only what it finalised), so
  recovery never rewrites metadata: it only removes what nothing claims and finishes uploads.
- Recovery runs on its own thread (:class:`~daemon.manager.RunHost` starts it), so a slow S3 server never delays
  ``READY=1``; until it is done, ``status`` lists the run as ``interrupted`` with empty counts.
- Every failure is caught per run, logged and recorded in the entry's errors: one bad store never stops the
  recovery of the others.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from daemon.errors import AcqdError
from daemon.log import get_logger
from daemon.run_journal import INTERRUPTED, Heartbeat, JournalEntry, RunJournal, interrupted_at
from daemon.run_manager import RunState, RunStatus
from daemon.storage import metadata
from daemon.storage.file_store import PARTIAL_SUFFIX
from daemon.storage.frame_table import TABLE_GROUP
from daemon.storage.s3_names import is_s3_url, parse_s3_url
from daemon.storage.s3_settings import S3Settings
from daemon.storage.sink import Store

WORKER_EXIT_TIMEOUT_S = 90.0
_POLL_S = 0.1
_WORKER_MODULE = b"daemon.storage.worker"
_STALE_SUFFIXES = (PARTIAL_SUFFIX, ".tmp")

log = get_logger("daemon.run_recovery")


def recover(
    journal: RunJournal,
    entry: JournalEntry,
    *,
    last_alive: Heartbeat | None = None,
    worker_timeout_s: float = WORKER_EXIT_TIMEOUT_S,
) -> JournalEntry:
    """Finalise the store of one interrupted run and mark its entry ``interrupted``; returns the new entry.
    ``last_alive``: the heartbeat the crashed daemon left (read before this daemon's first beat)."""
    errors: list[str] = []
    counts: dict[str, int] = {}
    if not wait_for_worker(entry.worker_pid, worker_timeout_s):
        errors.append(f"the storage worker (pid {entry.worker_pid}) was still running after {worker_timeout_s} s")
    try:
        counts.update(tidy_store(entry))
    except (AcqdError, OSError) as exc:
        errors.append(f"recovery of {entry.store} failed: {exc}")
        log.error("run_recovery_failed", run_id=entry.run_id, store=entry.store, error=str(exc))
    stopped_at = interrupted_at(entry, last_alive)
    journal.end(entry.run_id, INTERRUPTED, counts, tuple(errors), interrupted_at=stopped_at)
    recovered = journal.read(entry.run_id) or dataclasses.replace(
        entry, state=INTERRUPTED, counts=counts, interrupted_at=stopped_at
    )
    log.info(
        "run_recovered",
        run_id=entry.run_id,
        store=entry.store,
        errors=len(errors),
        interrupted_at=stopped_at,
        **counts,
    )
    return recovered


def tidy_store(entry: JournalEntry) -> dict[str, int]:
    """Steps 2-4 of the module notes for a store no worker writes any more (also used after a run whose worker was
    lost or failed); returns the counts. Raises AcqdError/OSError."""
    return _recover_s3(entry) if is_s3_url(entry.store) else _recover_local(entry)


def wait_for_worker(pid: int | None, timeout_s: float) -> bool:
    """Wait until the storage worker ``pid`` is gone (True), or ``timeout_s`` passed (False)."""
    deadline = time.monotonic() + timeout_s
    while pid is not None and _is_worker(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(_POLL_S)
    return True


def _is_worker(pid: int) -> bool:
    """``pid`` is a live (not zombie) storage worker process (a reused pid of another program is not)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return _WORKER_MODULE in cmdline and stat.rpartition(")")[2].split()[0] != "Z"


def _recover_local(entry: JournalEntry) -> dict[str, int]:
    from daemon.storage.file_store import FileStore

    root = Path(entry.store)
    removed = 0
    for path in _stale_files(root):
        path.unlink(missing_ok=True)
        removed += 1
    store = FileStore(root)
    try:
        return {"partial_removed": removed, **claimed(store, entry)}
    finally:
        store.close()


def _stale_files(root: Path) -> Iterator[Path]:
    if not root.is_dir() or root.is_symlink():
        return
    for folder, _, files in os.walk(root, followlinks=False):
        for name in files:
            if name.endswith(_STALE_SUFFIXES):
                yield Path(folder) / name


def _recover_s3(entry: JournalEntry) -> dict[str, int]:
    from daemon.storage.s3_store import S3Store
    from daemon.storage.staged_store import StagedS3Store
    from daemon.storage.upload_journal import staged_locations

    settings = S3Settings(**dict(entry.s3 or {}))
    location = parse_s3_url(entry.store)
    counts: dict[str, int] = {}
    if settings.staging_dir is not None and location in staged_locations(settings.staging_dir):
        staged = StagedS3Store(location, settings)
        staged.close()
        counts["uploads_resumed"] = staged.upload_stats().uploaded_objects
    store = S3Store(location, dataclasses.replace(settings, staging_dir=None, keep_staged=False))
    try:
        counts["uploads_aborted"] = abort_uploads(store)
        counts.update(claimed(store, entry))
    finally:
        store.close()
    return counts


def abort_uploads(store: Any) -> int:
    """Abort every multipart upload left under the S3 store's prefix; how many."""
    client, location = store.client, store.location
    folder = location.prefix + "/"
    aborted = 0
    pages = client.get_paginator("list_multipart_uploads").paginate(Bucket=location.bucket, Prefix=folder)
    for page in pages:
        for upload in page.get("Uploads", []):
            key, upload_id = upload.get("Key"), upload.get("UploadId")
            if key and upload_id and key.startswith(folder):
                client.abort_multipart_upload(Bucket=location.bucket, Key=key, UploadId=upload_id)
                aborted += 1
    return aborted


def claimed(store: Store, entry: JournalEntry) -> dict[str, int]:
    """What the store's metadata claims: level-0 frames and frame-table rows, summed over the run's arrays."""
    node = metadata.V3_NODE if entry.version == 3 else metadata.V2_ARRAY
    frames = rows = 0
    for key in entry.keys:
        frames += _first_extent(store, metadata.join(key, "0", node))
        rows += _first_extent(store, metadata.join(key, TABLE_GROUP, "frame_id", node))
    return {"frames_claimed": frames, "table_rows": rows}


def _first_extent(store: Store, key: str) -> int:
    data = store.get(key)
    if data is None:
        return 0
    try:
        shape = json.loads(data)["shape"]
        return int(shape[0])
    except (ValueError, KeyError, IndexError, TypeError):
        return 0


def interrupted_status(entry: JournalEntry, resumed_by: str | None = None) -> RunStatus:
    """A run a crash interrupted, as ``status`` lists it (``finished_at`` stays None until its store is recovered)."""
    return RunStatus(
        run_id=entry.run_id,
        state=RunState.INTERRUPTED,
        profile=entry.profile,
        store=entry.store,
        started_at=entry.started_at,
        finished_at=entry.finished_at if entry.state != "running" else None,
        counts=dict(entry.counts),
        errors=entry.errors,
        resumed_by=resumed_by or entry.resumed_by,
        interrupted_at=entry.interrupted_at,
    )
