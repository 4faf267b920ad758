"""The soak's store invariants, checked on a local folder (an S3 store is downloaded first): what zarr-python reads.

For every array of the run (its output keys):
- the store opens with zarr-python; the per-frame table claims no more rows than level 0 claims frames (it may
  claim fewer after a crash or a storage error: its rows are synced in the background; ``untabled`` counts them,
  and the harness requires none for a run that finished). Its rows are ``frame_id``'s length: a crash in the
  middle of a sync may leave the other columns longer (their metadata is written first), never shorter;
- every chunk (or shard) object the metadata's shape reaches exists (nothing claimed that was not written), for
  level 0 and every frame-table column;
- frame ids are unique (within each run's rows: a resumed store holds several runs);
- the pixels of each stored frame equal ``radial_sine(frame_id)``. A fake GenTL device that reconnected starts
  again at its frame 0 while acqd's ids continue, so after a row flagged ``AFTER_GAP`` whose pixels are the
  device's frame 0 the expected pattern is ``radial_sine(frame_id - base)`` (``base``: that row's id);
- a resumed store (``acqd.resumes`` records on the image group, :mod:`daemon.storage.append_plan`): the rows each
  record says the interrupted run stored without a row are flagged ``ROW_LOST`` (a frame, id unknown: no pixel
  check), the gap up to ``at_index`` is flagged ``PADDING`` (no frame: not counted in ``frames``), both with frame
  id -1, and no other row carries either flag;
- no ``*.partial`` / ``*.tmp`` file is left under the store.
"""

from __future__ import annotations

import itertools
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from daemon.cameras.pattern import radial_sine
from daemon.ipc.frame import FrameFlags
from daemon.storage.frame_table import PADDING, ROW_LOST

STALE_SUFFIXES = (".partial", ".tmp")
COLUMNS = ("frame_id", "device_timestamp_ns", "host_time_ns", "flags")


@dataclass
class StoreReport:
    """What one store holds and what is wrong with it (``problems`` empty: every invariant holds)."""

    store: str
    frames: int = 0  # frames level 0 holds (a resumed store's padding excluded)
    reconnects: int = 0
    untabled: int = 0  # frames level 0 holds beyond the frame table's rows (the table lags after a crash)
    padding: int = 0  # rows of a resumed store's gap: no frame (not counted in ``frames``)
    row_lost: int = 0  # frames an interrupted run stored without their row (counted in ``frames``, id unknown)
    resumes: int = 0  # resumes recorded in the images' ``acqd.resumes`` attributes
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def stale_files(root: Path) -> list[Path]:
    """``*.partial`` / ``*.tmp`` files under ``root``."""
    return sorted(p for p in root.rglob("*") if p.is_file() and p.name.endswith(STALE_SUFFIXES))


def check_store(root: Path, keys: tuple[str, ...] = ("",), *, label: str | None = None) -> StoreReport:
    """Check every invariant of the module notes on the store folder ``root``."""
    report = StoreReport(label or str(root))
    report.problems += [f"stale file {p.relative_to(root)}" for p in stale_files(root)] if root.exists() else []
    if not (root / "zarr.json").exists() and not (root / ".zgroup").exists():
        report.problems.append("no root group metadata")
        return report
    for key in keys:
        _check_array_safely(root, key, report)
    return report


def _check_array_safely(root: Path, key: str, report: StoreReport) -> None:
    try:
        _check_array(root, key, report)
    except Exception as exc:  # any failure to read is a broken invariant, reported with its type
        report.problems.append(f"{key or '/'}: unreadable ({type(exc).__name__}: {exc})")


def _check_array(root: Path, key: str, report: StoreReport) -> None:
    import zarr  # test-only oracle

    prefix = f"{key}/" if key else ""
    group = zarr.open_group(str(root), mode="r")
    image = group[f"{prefix}0"]
    table = _table_rows(key, {name: np.asarray(group[f"{prefix}frames/{name}"][:]) for name in COLUMNS}, report)
    frames = int(image.shape[0])
    ids, flags = table["frame_id"], table["flags"]
    for path in (f"{prefix}0", *(f"{prefix}frames/{name}" for name in COLUMNS)):
        report.problems += missing_chunks(root, path)
    if len(ids) > frames:
        report.problems.append(f"{key or '/'}: the frame table claims {len(ids)} rows, level 0 {frames} frames")
    report.untabled += max(0, frames - len(ids))
    records = resume_records(group[key] if key else group)
    segments = _segments(key, records, ids, flags, report)
    padding = int(np.count_nonzero(flags & PADDING))
    report.padding += padding
    report.row_lost += int(np.count_nonzero(flags & ROW_LOST))
    report.resumes += len(records)
    report.frames += frames - padding
    count = min(frames, len(ids))
    images = np.asarray(image[:count])
    for start, stop in segments:
        _check_pixels(key, ids, flags, images, range(start, min(stop, count)), report)


def _table_rows(key: str, columns: dict[str, np.ndarray], report: StoreReport) -> dict[str, np.ndarray]:
    """The rows the frame table claims: ``frame_id``'s length (its metadata is written last, so a crash mid-sync
    may leave the other columns longer, never shorter: a shorter one is a broken invariant)."""
    rows = len(columns["frame_id"])
    short = [name for name, column in columns.items() if len(column) < rows]
    if short:
        report.problems.append(f"{key or '/'}: frame-table columns {short} are shorter than frame_id ({rows} rows)")
    return {name: column[:rows] for name, column in columns.items()}


def resume_records(node: Any) -> list[dict[str, Any]]:
    """The image group's ``acqd.resumes`` records (one per resume of the run that wrote it)."""
    records = dict(node.attrs).get("acqd", {}).get("resumes", [])
    return [dict(record) for record in records]


def _segments(
    key: str, records: list[dict[str, Any]], ids: np.ndarray, flags: np.ndarray, report: StoreReport
) -> list[tuple[int, int]]:
    """The row ranges each run wrote (split at every resume's ``at_index``), after checking the gap rows: a row
    flagged padding or lost has frame id -1 and lies in a recorded gap (lost: before its ``claimed_before``,
    padding: from there to ``at_index``), and frame ids are unique within each run's rows."""
    name = key or "/"
    expected = np.zeros(len(ids), dtype=flags.dtype)
    starts = [0]
    for record in records:
        rows_before, before, at = record["table_rows_before"], record["claimed_before"], record["at_index"]
        if not rows_before <= before <= at:
            report.problems.append(f"{name}: resume record out of order: {record}")
            continue
        expected[rows_before:before] = ROW_LOST
        expected[before:at] = PADDING
        starts.append(at)
    marked = flags & (ROW_LOST | PADDING)
    wrong = np.flatnonzero(marked != expected[: len(flags)])
    if len(wrong):
        row = int(wrong[0])
        report.problems.append(f"{name}: row {row} flags {int(flags[row])}, the resume records expect {expected[row]}")
    if (ids[marked != 0] != -1).any():
        report.problems.append(f"{name}: a padding or lost row has a frame id")
    segments = list(itertools.pairwise([*starts, len(ids)]))
    for start, stop in segments:
        real = ids[start:stop][marked[start:stop] == 0]
        if len(np.unique(real)) != len(real):
            report.problems.append(f"{name}: frame ids stored twice: {len(real) - len(np.unique(real))}")
    return segments


def _check_pixels(
    key: str, ids: np.ndarray, flags: np.ndarray, images: np.ndarray, rows: range, report: StoreReport
) -> None:
    """Each frame of one run's rows equals its reference pattern (padding and lost rows have none to compare). A
    resumed run's camera may count from 0 again at its first row, as after a reconnect."""
    base, first = 0, rows.start > 0
    for row in rows:
        if flags[row] & (ROW_LOST | PADDING):
            continue
        frame_id, pixels = int(ids[row]), images[row]
        restarted, first = first or bool(flags[row] & FrameFlags.AFTER_GAP), False
        if _matches(pixels, frame_id - base):
            continue
        if restarted and _matches(pixels, 0):
            base = frame_id  # the device reconnected and counts from 0 again
            report.reconnects += 1
            continue
        report.problems.append(f"{key or '/'}: row {row} (frame id {frame_id}) differs from the reference pattern")
        break


def _matches(pixels: np.ndarray, device_frame: int) -> bool:
    if device_frame < 0:
        return False
    height, width = pixels.shape[-2:]
    return bool(np.array_equal(pixels, radial_sine(device_frame, height, width, pixels.dtype)))


def missing_chunks(root: Path, array_path: str) -> list[str]:
    """Chunk (or shard) objects the array's metadata claims that are not on disk."""
    folder = root / array_path if array_path else root
    meta_v3 = folder / "zarr.json"
    if meta_v3.exists():
        doc: dict[str, Any] = json.loads(meta_v3.read_text())
        grid = doc["chunk_grid"]["configuration"]["chunk_shape"]
        encoding = doc.get("chunk_key_encoding", {})
        separator = encoding.get("configuration", {}).get("separator", "/")
        prefix = "c" + separator if encoding.get("name", "default") == "default" else ""
    else:
        doc = json.loads((folder / ".zarray").read_text())
        grid, separator, prefix = doc["chunks"], doc.get("dimension_separator", "."), ""
    counts = [math.ceil(extent / size) for extent, size in zip(doc["shape"], grid, strict=True)]
    missing = []
    for index in itertools.product(*(range(n) for n in counts)):
        name = prefix + separator.join(str(i) for i in index)
        if not (folder / name).is_file():
            missing.append(f"{array_path or '/'}: claimed chunk {name} is missing")
    return missing[:5]
