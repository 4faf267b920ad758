"""Resuming an interrupted run: the profile it ran with, the checks before a run appends to its store, the log.

A GUI or ops tool sends ``start`` with ``resume: <run_id>`` (``acqd ctl start --resume RUN_ID``).
:meth:`~daemon.manager.RunHost.resume` then:

1. finds the run (NotFoundError if unknown): it must be ``interrupted`` with its recovery done, and not resumed
   before (ConflictError otherwise: running, finished, still recovering, already resumed);
2. rebuilds its profile from the journal (:func:`resume_profile`: the profile name or inline text and the
   overrides it started with), or takes the profile the caller gives; either way it must write the same store,
   arrays and Zarr version as the interrupted run (ConfigError naming what differs);
3. checks the store against the profile (:func:`check_resumable`, :func:`~daemon.storage.append_plan.
   plan_append`: every array's metadata must match exactly; ConfigError names the array, field and both values);
4. registers a new run (its own run id) like ``start`` does, whose storage worker appends to the store: each image
   continues at the first fresh object row past what the store claims, the gap between is recorded in the image
   group's ``acqd.resumes`` attribute and in the frame table (padding rows), and the run summary gets ``resumes``
   and ``resume`` (per array: ``at_index``, ``claimed_before``, ``padding_frames``, ``store_frames``...);
5. journals the new run with ``resumes: <old id>`` and the old one with ``resumed_by: <new id>``, and logs
   ``run_resumed``.

Design notes:
- The checks run on the control worker thread before anything is registered, so a mismatch is an error reply,
  not a failed run. The worker repeats the plan on the store it opens (nothing can change it in between: the store
  is reserved for the new run as ``start`` reserves any store).
- ``interrupted_at`` (in the record and the event) is when the crashed daemon was last seen alive (its journal
  heartbeat, every main-loop tick: :mod:`daemon.run_journal`), null when that is unknown (the heartbeat was lost
  or is another daemon's).
- A resume is claimed once its run is registered (a second resume of the same run meanwhile is refused:
  conflict). If that run fails to start (a camera busy...), it stored nothing, and the claim is released (in memory
  and in the journal): the interrupted run can be resumed again. The store may then hold the failed attempt's
  ``acqd.resumes`` record (same ``at_index``), which stays as history.
- The new run's frame accounting is its own (delivered = stored + dropped); the store's totals are in ``resume``.
- Local and ``s3://`` stores alike: the plan only reads JSON documents and the resumed run only creates new
  objects and rewrites metadata documents.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from daemon.errors import ConfigError, ConflictError
from daemon.log import get_logger
from daemon.profile import Profile
from daemon.profile_catalog import ProfileCatalog
from daemon.run_journal import JournalEntry, RunJournal
from daemon.run_manager import ProfileSource
from daemon.storage.append_plan import AppendPlan, plan_append
from daemon.storage.location import open_store
from daemon.storage.settings_json import ResumeRequest

log = get_logger("manager")


def resume_profile(
    catalog: ProfileCatalog, entry: JournalEntry, source: ProfileSource | None, overrides: Mapping[str, Any]
) -> tuple[Profile, ProfileSource, Mapping[str, Any]]:
    """The profile a resume of ``entry`` runs: ``source`` (with ``overrides``) if given, else the journal's."""
    if source is None:
        if entry.source_name is None and entry.source_text is None:
            raise ConfigError(
                f"resume: the journal entry of run {entry.run_id!r} does not hold its profile (written by an older "
                "acqd): give the profile again with args.name or args.yaml."
            )
        source = ProfileSource(name=entry.source_name, text=entry.source_text)
        overrides = {**entry.overrides, **overrides}
    profile = catalog.load(source, overrides)
    stream = profile.stream
    mismatches = [
        (name, got, expected)
        for name, got, expected in (
            ("store", stream.store_path, entry.store),
            ("arrays", [camera.array.output_key for camera in profile.cameras], list(entry.keys)),
            ("version", int(stream.version_enum.value), entry.version),
        )
        if got != expected
    ]
    if mismatches:
        name, got, expected = mismatches[0]
        raise ConfigError(
            f"resume: the profile's {name} is {got!r}; run {entry.run_id!r} wrote {expected!r}. A resumed run "
            "must write the same store, arrays and Zarr version."
        )
    return profile, source, overrides


def check_resumable(entry: JournalEntry, profile: Profile) -> AppendPlan:
    """The plan of appending ``profile``'s arrays to ``entry``'s store (ConfigError/StorageError if it cannot)."""
    store = open_store(profile.stream.store_path, profile.stream.s3)
    try:
        return plan_append(store, profile.stream)
    finally:
        store.close()


def log_resumed(run_id: str, entry: JournalEntry, plan: AppendPlan) -> None:
    """The ``run_resumed`` event: which run resumes which, and per array where it starts and the gap."""
    log.info(
        "run_resumed",
        run_id=run_id,
        resumes=entry.run_id,
        store=entry.store,
        interrupted_at=entry.interrupted_at,
        arrays={
            key: {
                "at_index": image.at_index,
                "claimed_before": image.claimed_before,
                "padding_frames": image.padding_frames,
                "table_rows_before": image.table_rows,
            }
            for key, image in plan.images.items()
        },
    )


class ResumeClaims:
    """Which run resumes which interrupted run: at most one, and a resume that failed to start is released.

    Not thread-safe: the run host calls it with its lock held. This daemon's claims come first; a run it never
    claimed is looked up in its (recovered) journal entry, then in the journal."""

    def __init__(self, journal: RunJournal | None) -> None:
        self._journal = journal
        self._by: dict[str, str | None] = {}  # interrupted run id -> the run resuming it (None: released)

    def check(self, run_id: str, entry: JournalEntry | None) -> None:
        """Raise ConflictError if ``run_id`` (whose entry this daemon recovered, if any) is already resumed."""
        if run_id in self._by:
            by = self._by[run_id]
        else:
            by = entry.resumed_by if entry is not None else None
            if by is None and self._journal is not None:
                journal_entry = self._journal.read(run_id)
                by = journal_entry.resumed_by if journal_entry is not None else None
        if by is not None:
            raise ConflictError(f"resume: run {run_id!r} was already resumed by run {by!r}.")

    def claim(self, request: ResumeRequest, run_id: str) -> None:
        """Run ``run_id`` resumes ``request.resumes`` (the journal records it before the run starts)."""
        self._by[request.resumes] = run_id

    def release_if_start_failed(self, run_id: str, request: ResumeRequest | None, cause: object) -> None:
        """The run ``run_id`` ended: if it resumed a run and failed to start, it stored nothing, so that run may be
        resumed again (in memory and in the journal, written now so no later claim can be overtaken)."""
        if request is None or cause != "start_failed" or self._by.get(request.resumes) != run_id:
            return
        self._by[request.resumes] = None
        if self._journal is not None:
            self._journal.resumed(request.resumes, None)
        log.info("run_resume_released", run_id=run_id, resumes=request.resumes, reason="start_failed")

    def resumed_by(self) -> dict[str, str | None]:
        """A snapshot: interrupted run id -> the run of this daemon resuming it (None: released)."""
        return dict(self._by)
