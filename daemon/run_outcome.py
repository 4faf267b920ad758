"""How a run begins and ends on paper: the store check before it starts, and the ``run_summary`` after it ends.

Design notes:
- :func:`check_store` repeats the profile's store rules right before anything is written (the data root may have
  changed since the profile was loaded), refuses an existing store unless ``overwrite``, and runs the S3
  ``preflight`` for an ``s3://`` store, so these errors come before any camera is opened. A resumed run
  (``append``) instead needs the store to exist and to match the profile (:func:`~daemon.storage.append_plan.
  plan_append`), whatever ``overwrite`` says: a resume never clears a store. A local store that another process
  is writing (its worker holds the store's lock: :meth:`~daemon.storage.file_store.FileStore.lock`) is refused
  either way (StoreBusyError).
- A resumed run's summary adds ``resumes`` (the interrupted run's id) and ``resume`` (per array: where it started,
  the gap, and ``store_frames``, the frames the whole store claims), from the worker's FINAL.
- :func:`summarize` settles the books (:func:`daemon.run_books.settle`) and decides the outcome: ``failed`` when
  anything went wrong (a camera, the worker, storage, unbalanced books), else ``aborted`` when an abort was
  requested, else ``finished``. The summary is one JSON-ready mapping: the canonical ``run_summary`` event.
"""

from __future__ import annotations

import signal
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from daemon.cameras.camera import FrameLayout
from daemon.errors import ConfigError, StoreExistsError
from daemon.ipc.accounting import DropCounts
from daemon.ipc.stream_status import FinishResult, SenderState
from daemon.profile import Profile
from daemon.profile_cameras import CameraProfile
from daemon.profile_paths import resolve_store
from daemon.run_books import CameraBooks, Settlement, settle
from daemon.run_manager import RunState
from daemon.storage.append_plan import plan_append
from daemon.storage.file_store import FileStore
from daemon.storage.location import open_store
from daemon.storage.s3_names import is_s3_url
from daemon.storage.s3_settings import S3Settings


def check_store(profile: Profile, *, append: bool = False) -> None:
    """Raise ConfigError, StoreExistsError or StorageError if the run must not write its store (or, ``append``,
    append to it)."""
    stream = profile.stream
    path = stream.store_path
    if is_s3_url(path):
        from daemon.storage.s3_store import preflight

        preflight(path, stream.s3 if stream.s3 is not None else S3Settings())
    else:
        resolved = resolve_store(path, profile.data_root)
        if resolved != path:
            raise ConfigError(
                f"store {path!r} now resolves to {resolved!r} (a symlink changed since the profile was loaded): "
                "load the profile again."
            )
        FileStore(path).check_free()  # another process writing it: refused before anything opens
    if append:
        store = open_store(path, stream.s3)
        try:
            plan_append(store, stream)
        finally:
            store.close()
        return
    if stream.overwrite:
        return
    store = open_store(path, stream.s3)
    try:
        if not store.is_empty():
            raise StoreExistsError(
                f"store {store.url} already exists and overwrite is false: choose a new store or set "
                "storage.overwrite: true."
            )
    finally:
        store.close()


def layout_problem(camera: CameraProfile, layout: FrameLayout) -> str | None:
    """Why the configured camera's frames do not fit its array, or None when they do."""
    dims = camera.array.dimensions
    shape = (dims[-2].array_size_px, dims[-1].array_size_px)
    dtype = camera.array.dtype
    if tuple(layout.shape) == shape and np.dtype(layout.dtype) == dtype:
        return None
    return (
        f"camera {camera.name!r} delivers frames of shape {tuple(layout.shape)} and type {layout.dtype}; its array "
        f"{camera.array.output_key!r} takes {shape} {dtype.name}: set the camera's width, height and pixel_format "
        "(or the array's dimensions and data_type) to match."
    )


def describe_exit(code: int | None) -> str:
    """``exit code 3``, ``killed by SIGKILL``, or ``still running``."""
    if code is None:
        return "still running"
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


def summarize(
    *,
    run_id: str,
    profile: Profile,
    books: Iterable[CameraBooks],
    readers_errors: Mapping[str, BaseException],
    result: FinishResult | None,
    aborted: Mapping[str, int],
    abort: bool,
    cause: str,
    errors: list[str],
    duration_s: float,
    worker_exit: int | None,
    resumes: str | None = None,
) -> tuple[dict[str, Any], RunState, list[str]]:
    """The ``run_summary``, the final state, and the errors found while settling (see the module notes)."""
    books = list(books)
    new_errors = [f"camera {name!r}: {error}" for name, error in readers_errors.items()]
    worker_summary = result.summary if result is not None else None
    storage_error = worker_summary.get("error") if isinstance(worker_summary, Mapping) else None
    if storage_error and not any(str(storage_error) in error for error in errors):  # not said at start already
        new_errors.append(f"storage failed: {storage_error}")
    if result is not None and result.state is not SenderState.FINISHED and cause != "start_failed":
        if not storage_error:
            exit_text = "" if worker_exit is None else f", {describe_exit(worker_exit)}"
            new_errors.append(f"the storage worker was lost ({result.stats.lost_cause}{exit_text})")
    elif result is not None and result.state is SenderState.FINISHED and not storage_error:
        if result.stats.lost:  # e.g. frames the worker refused as invalid: not stored, so not a success
            new_errors.append(f"the storage worker did not store {len(result.stats.lost)} frames it was sent")
        if worker_exit not in (None, 0):
            new_errors.append(f"the storage worker ended with {describe_exit(worker_exit)}")
    settlement = None
    if result is not None:
        settlement = settle(books, result.stats, aborted, worker_summary, storage_failed=bool(storage_error))
        new_errors.extend(f"the books do not balance: {problem}" for problem in settlement.problems)
    every_error = [*errors, *new_errors]
    state = RunState.FAILED if every_error else RunState.ABORTED if abort else RunState.FINISHED
    summary = _summary(run_id, profile, state, cause, duration_s, settlement, books, result, worker_exit)
    summary["errors"] = every_error
    if resumes is not None:
        summary["resumes"] = resumes
        summary["resume"] = worker_summary.get("resume") if isinstance(worker_summary, Mapping) else None
    return summary, state, new_errors


def _summary(
    run_id: str,
    profile: Profile,
    state: RunState,
    cause: str,
    duration_s: float,
    settlement: Settlement | None,
    books: list[CameraBooks],
    result: FinishResult | None,
    worker_exit: int | None,
) -> dict[str, Any]:
    worker_summary = result.summary if result is not None else None
    bytes_written = worker_summary.get("bytes_written") if isinstance(worker_summary, Mapping) else None
    bytes_stored = settlement.bytes_stored if settlement is not None else 0
    finished = result is not None and result.state is SenderState.FINISHED
    if settlement is not None:
        cameras = {c.name: c.to_json() for c in settlement.cameras}
        delivered, stored, dropped = settlement.delivered, settlement.stored, settlement.dropped
    else:
        cameras = {b.name: {"key": b.key, "delivered": 0, "stored": 0} for b in books}
        delivered, stored, dropped = 0, 0, DropCounts()
    ratio = None
    if isinstance(bytes_written, int) and bytes_written > 0 and bytes_stored:
        ratio = round(bytes_stored / bytes_written, 3)
    return {
        "run_id": run_id,
        "outcome": state.value,
        "cause": cause,
        "profile": profile.file,
        "store": profile.stream.store_path,
        "store_finalized": finished and not (worker_summary or {}).get("error"),
        "duration_s": round(duration_s, 3),
        "delivered": delivered,
        "stored": stored,
        "dropped": dropped.as_dict(),
        "cameras": cameras,
        "bytes_stored": bytes_stored,
        "bytes_written": bytes_written,
        "compression_ratio": ratio,
        "mb_per_s": round(bytes_stored / duration_s / 1e6, 3) if duration_s > 0 else None,
        "balanced": settlement is not None and settlement.balanced,
        "worker": {
            "exit": None if worker_exit is None else describe_exit(worker_exit),
            "lost_cause": None if result is None else result.stats.lost_cause,
            "frame_table": (worker_summary or {}).get("frame_table"),
        },
    }
