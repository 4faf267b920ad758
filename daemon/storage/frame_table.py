"""The per-frame table: frame id, device timestamp, host time and flags of every frame an image stored.

Layout: next to an image's resolution levels, the group ``<output_key>/frames/`` holds four 1-D arrays along the
frame index (acquisition order: the order frames were appended to the image), in the store's Zarr version:

- ``frame_id`` (int64): the camera's frame counter;
- ``device_timestamp_ns`` (int64): the device's timestamp, -1 when the device gave none;
- ``host_time_ns`` (int64): ``time.time_ns()`` when the host received the frame;
- ``flags`` (uint8): :class:`~daemon.ipc.frame.FrameFlags` (1 incomplete, 2 after a gap), and two bits of the
  table's own for a resumed run (:mod:`daemon.storage.append_plan`): 64 ``ROW_LOST`` (a frame the interrupted run
  stored whose row it never wrote) and 128 ``PADDING`` (no frame: the gap before the resumed run's first frame).
  Such rows have ``frame_id``, ``device_timestamp_ns`` and ``host_time_ns`` -1.

Usage (the storage worker)::

    tables = FrameTables(store, version, keys)       # writes the groups and arrays (no rows claimed)
    table = tables.table(key)
    table.add(frame_id, device_timestamp_ns, host_time_ns, flags)   # per frame appended to the image
    tables.stored(key, stream.frames_stored(key))    # when the image's stored count moves
    tables.sync()                                    # after that, and when idle: writes in the background
    stream.close(); tables.stored(...) for every key; tables.close()   # at the end: every stored frame claimed

Design notes:
- Rows are added on the worker's thread at O(1) cost (four stores into preallocated chunk buffers). Bytes are
  written by one background thread, so a slow store (S3) never stalls the frame loop.
- The arrays' shape is the number of rows the table *claims*: at most the image's ``frames_stored`` (so never a
  row whose image frame is not stored) and only once the chunks holding those rows are on the store: a sync
  writes chunk objects first and the metadata after, and syncs never overlap. A crash at any moment leaves a
  table whose every claimed row is on the store and describes a stored frame. The four arrays' metadata cannot
  change at once: a crash in the middle of a sync may leave columns of different lengths. ``frame_id`` is
  updated last, so it is never longer than another column: its length is the table's row count.
- A full chunk is written once; the chunk being filled is written as a copy (padded with zeros) whenever a claim
  reaches rows not written yet. Syncs run at most every ``sync_interval_s``; :meth:`FrameTables.close` makes the
  last one on the caller's thread.
- A resumed run (``resume``): each table continues at the row its store claims: the chunk being filled is read
  back once (its claimed rows kept), rows up to the image's resume index are added as ``ROW_LOST``/``PADDING``,
  then the new frames' rows; ``stored`` counts stay the resumed run's own (rows claim from the resume index on).
- A write failure is sticky: logged once, later syncs are skipped, ``close`` raises the StorageError. The image
  keeps streaming (its data matters more than the table's).
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numcodecs
import numpy as np
import numpy.typing as npt

from daemon.errors import ConfigError, StorageError
from daemon.log import get_logger
from daemon.storage import metadata
from daemon.storage.append_plan import AppendPlan, ImageAppend
from daemon.storage.codec import ChunkCodec, JSONDict
from daemon.storage.settings import CompressionSettings, ZarrVersion
from daemon.storage.sink import Store

TABLE_GROUP = "frames"
COLUMNS: tuple[tuple[str, np.dtype[Any]], ...] = (
    ("frame_id", np.dtype("<i8")),
    ("device_timestamp_ns", np.dtype("<i8")),
    ("host_time_ns", np.dtype("<i8")),
    ("flags", np.dtype("|u1")),
)
UNKNOWN = -1  # an int64 column's value when the header had none (or one beyond int64)
ROW_LOST = 64  # flags: the interrupted run stored this frame but not its row (a resumed run's table)
PADDING = 128  # flags: no frame at this index (the gap before a resumed run's first frame)
DEFAULT_CHUNK_ROWS = 16384
DEFAULT_SYNC_INTERVAL_S = 0.5
_COMPRESSION = CompressionSettings("blosc-lz4", level=5, shuffle="byte")
_I64_MAX = (1 << 63) - 1
_ATTRIBUTES: JSONDict = {
    "acqd_frame_table": {
        "version": 1,
        "index": "the frame's position in the image, in acquisition order",
        "columns": {
            "frame_id": "the camera's frame counter",
            "device_timestamp_ns": "the device's timestamp in ns; -1 when unknown",
            "host_time_ns": "host wall-clock time (ns since the Unix epoch) when the frame was received",
            "flags": "bit 0: incomplete buffer; bit 1: frames were lost upstream just before this one; bit 6: "
            "row lost in a crash (the frame may be stored); bit 7: padding, no frame (the gap before a resumed run)",
        },
    }
}

log = get_logger(__name__)

Buffers = tuple[npt.NDArray[Any], ...]


@dataclass(frozen=True, slots=True)
class _Update:
    """What one sync writes for one table: whole chunks (index, column buffers), then the claim (None: unchanged)."""

    table: FrameTable
    chunks: tuple[tuple[int, Buffers], ...]
    claim: int | None


class FrameTable:
    """The rows of one image's table, in chunk buffers; knows what to write for a claim. No I/O of its own."""

    def __init__(self, image_key: str, version: ZarrVersion, chunk_rows: int = DEFAULT_CHUNK_ROWS) -> None:
        if isinstance(chunk_rows, bool) or not isinstance(chunk_rows, int) or chunk_rows < 1:
            raise ConfigError(f"chunk_rows must be an integer >= 1. Got {chunk_rows!r} instead.")
        self.key = image_key
        self.path = metadata.join(image_key, TABLE_GROUP)
        self._version = ZarrVersion(version)
        self._chunk_rows = chunk_rows
        self._codecs = tuple(ChunkCodec(_COMPRESSION, dtype) for _, dtype in COLUMNS)
        self.rows = 0
        self.claimed = 0  # rows the last update claimed
        self.chunks_on_store = 0  # chunks (of each column) written so far (by the writer)
        self._fill = 0  # rows in the chunk being filled
        self._chunk_index = 0
        self._buffers = self._new_buffers()
        self._full: list[tuple[int, Buffers]] = []  # filled chunks not handed to the writer yet
        self._handed_rows = 0  # rows whose bytes were handed to the writer
        self._origin = 0  # the row of this run's first frame (a resumed run's at_index)

    def resume(self, rows_before: int, lost_until: int, at_index: int, head: Buffers | None) -> None:
        """Continue a table that claims ``rows_before`` rows (``head``: its chunk being filled, decoded), adding
        ``ROW_LOST`` rows up to ``lost_until`` and ``PADDING`` rows up to ``at_index`` (see the module notes)."""
        if self.rows:
            raise ConfigError(f"frame table {self.path!r} can be resumed only before any row is added.")
        self._chunk_index, self._fill = divmod(rows_before, self._chunk_rows)
        self.rows = self.claimed = self._handed_rows = rows_before
        self.chunks_on_store = self._chunk_index
        if head is not None:
            for buffer, old in zip(self._buffers, head, strict=True):
                buffer[: self._fill] = old[: self._fill]
        for row in range(rows_before, at_index):
            self.add(UNKNOWN, None, UNKNOWN, ROW_LOST if row < lost_until else PADDING)
        self._origin = at_index

    @property
    def chunk_rows(self) -> int:
        return self._chunk_rows

    def decode_chunk(self, store: Store, index: int) -> Buffers | None:
        """The rows of chunk ``index`` as stored (every column), or None when a column is missing."""
        columns = []
        for name, dtype in COLUMNS:
            key = metadata.chunk_key(self._version, metadata.join(self.path, name), (index,))
            data = store.get(key)
            if data is None:
                return None
            raw = np.frombuffer(numcodecs.Blosc().decode(data), dtype=dtype)
            if raw.size != self._chunk_rows:
                raise StorageError(f"frame table chunk {key} holds {raw.size} rows; expected {self._chunk_rows}.")
            columns.append(raw)
        return tuple(columns)

    def add(self, frame_id: int, device_timestamp_ns: int | None, host_time_ns: int, flags: int) -> None:
        """One row: the next frame appended to the image."""
        i = self._fill
        ids, device, host, flag = self._buffers
        ids[i] = frame_id if frame_id <= _I64_MAX else UNKNOWN
        device[i] = (
            device_timestamp_ns if device_timestamp_ns is not None and device_timestamp_ns <= _I64_MAX else UNKNOWN
        )
        host[i] = host_time_ns
        flag[i] = int(flags) & 0xFF
        self.rows += 1
        self._fill = i + 1
        if self._fill == self._chunk_rows:
            self._full.append((self._chunk_index, self._buffers))
            self._chunk_index += 1
            self._buffers = self._new_buffers()
            self._fill = 0

    def take(self, frames_stored: int) -> _Update | None:
        """What to write so the table claims ``min(frames_stored, rows)`` rows; None if nothing changed."""
        stored_rows = self._origin + frames_stored if frames_stored > 0 else 0
        claim = max(self.claimed, min(stored_rows, self.rows))
        chunks = tuple(self._full)
        self._full = []
        if chunks:
            self._handed_rows = self._chunk_index * self._chunk_rows
        if claim > self._handed_rows:  # the claim reaches into the chunk being filled: write a copy of it
            chunks += ((self._chunk_index, tuple(b.copy() for b in self._buffers)),)
            self._handed_rows = self.rows
        if not chunks and claim == self.claimed:
            return None
        update = _Update(self, chunks, claim if claim != self.claimed else None)
        self.claimed = claim
        return update

    def group_documents(self) -> list[tuple[str, bytes]]:
        """The group and its four arrays, claiming no rows."""
        docs = metadata.group_documents(self._version, self.path, _ATTRIBUTES)
        return docs + self.array_documents(0)

    def array_documents(self, rows: int) -> list[tuple[str, bytes]]:
        """The four arrays' metadata claiming ``rows`` rows, ``frame_id`` last (see the module's notes)."""
        return [
            (metadata.join(self.path, name, self._array_node()), metadata.encode(self._array_json(rows, dtype, codec)))
            for (name, dtype), codec in reversed(list(zip(COLUMNS, self._codecs, strict=True)))
        ]

    def chunk_objects(self, index: int, buffers: Buffers) -> list[tuple[str, bytes | memoryview]]:
        """The encoded chunk ``index`` of every column."""
        return [
            (metadata.chunk_key(self._version, metadata.join(self.path, name), (index,)), codec.encode(buffer))
            for (name, _), codec, buffer in zip(COLUMNS, self._codecs, buffers, strict=True)
        ]

    def _array_node(self) -> str:
        return metadata.V3_NODE if self._version is ZarrVersion.V3 else metadata.V2_ARRAY

    def _array_json(self, rows: int, dtype: np.dtype[Any], codec: ChunkCodec) -> JSONDict:
        if self._version is ZarrVersion.V2:
            return {
                "zarr_format": 2,
                "shape": [rows],
                "chunks": [self._chunk_rows],
                "dtype": dtype.str,
                "compressor": codec.v2_compressor(),
                "fill_value": 0,
                "order": "C",
                "filters": None,
                "dimension_separator": "/",
            }
        return {
            "zarr_format": 3,
            "node_type": "array",
            "shape": [rows],
            "data_type": dtype.name,
            "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": [self._chunk_rows]}},
            "chunk_key_encoding": {"name": "default", "configuration": {"separator": "/"}},
            "fill_value": 0,
            "codecs": codec.v3_codecs(),
            "attributes": {},
            "dimension_names": ["frame"],
            "storage_transformers": [],
        }

    def _new_buffers(self) -> Buffers:
        return tuple(np.zeros(self._chunk_rows, dtype=dtype) for _, dtype in COLUMNS)


class FrameTables:
    """The tables of every image of a stream, written on ``store`` (which the caller closes) in the background."""

    def __init__(
        self,
        store: Store,
        version: ZarrVersion,
        keys: Sequence[str],
        *,
        chunk_rows: int = DEFAULT_CHUNK_ROWS,
        sync_interval_s: float = DEFAULT_SYNC_INTERVAL_S,
        resume: AppendPlan | None = None,
    ) -> None:
        if isinstance(sync_interval_s, bool) or not isinstance(sync_interval_s, int | float) or sync_interval_s < 0:
            raise ConfigError(f"sync_interval_s must be a number >= 0. Got {sync_interval_s!r} instead.")
        self._store = store
        self._tables = {key: FrameTable(key, version, chunk_rows) for key in keys}
        self._stored = dict.fromkeys(self._tables, 0)
        self._interval_s = float(sync_interval_s)
        self._last_sync = -float("inf")
        self._job: Future[None] | None = None
        self._error: StorageError | None = None
        self._closed = False
        self.bytes_written = 0
        for key, table in self._tables.items():
            if resume is None:
                self._put_all(table.group_documents())
            else:
                self._resume(table, resume.image(key))
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="acqd-frame-table")

    def table(self, key: str) -> FrameTable:
        return self._tables[key]

    @property
    def claimed(self) -> dict[str, int]:
        """Rows each table claims (on the store once the last sync finished)."""
        return {key: table.claimed for key, table in self._tables.items()}

    @property
    def objects_written(self) -> int:
        """Chunk objects on the store (a chunk rewritten as it fills counts once)."""
        return sum(table.chunks_on_store for table in self._tables.values()) * len(COLUMNS)

    @property
    def error(self) -> StorageError | None:
        return self._error

    def stored(self, key: str, frames_stored: int) -> None:
        """The image ``key`` has its first ``frames_stored`` frames stored: its table may claim as many rows."""
        self._stored[key] = frames_stored

    def sync(self) -> None:
        """Start writing what the tables may claim, unless a sync is running or the last began too recently."""
        if self._closed or not self._job_done() or self._error is not None:
            return
        now = time.monotonic()
        if now - self._last_sync < self._interval_s:
            return
        self._last_sync = now
        updates = self._take()
        if updates:
            self._job = self._executor.submit(self._write, updates)

    def close(self) -> None:
        """Wait for the running sync, then claim every stored frame. Raises a table StorageError.

        Idempotent (a later call raises nothing). The store stays open.
        """
        if self._closed:
            return
        self._closed = True
        self._executor.shutdown(wait=True)
        if self._job_done() and self._error is None:
            try:
                self._write(self._take())
            except StorageError as exc:
                self._fail(exc)
        if self._error is not None:
            raise StorageError(f"frame table on {self._store.url} failed: {self._error}") from self._error

    # -- internals ----------------------------------------------------------------------------------------------

    def _resume(self, table: FrameTable, image: ImageAppend) -> None:
        docs = table.group_documents()
        existing = self._store.get(docs[-1][0])  # frame_id's metadata (written last)
        exists = existing is not None
        if existing is not None and _chunk_rows_of(existing) != table.chunk_rows:
            raise StorageError(
                f"frame table {table.path!r} in {self._store.url} has chunks of {_chunk_rows_of(existing)} rows; "
                f"this table writes {table.chunk_rows}: it cannot be resumed."
            )
        self._put_all(docs if not exists else docs[: -len(COLUMNS)])  # the group (its attributes), arrays if new
        rows = image.table_rows if exists else 0
        head_index, in_head = divmod(rows, table.chunk_rows)
        head = table.decode_chunk(self._store, head_index) if in_head else None
        table.resume(rows, image.claimed_before, image.at_index, head)
        log.info(
            "frame_table_resumed",
            key=table.key,
            rows_before=rows,
            rows_lost=max(0, image.claimed_before - rows),
            padding_rows=image.padding_frames,
            at_index=image.at_index,
        )

    def _take(self) -> list[_Update]:
        updates = (table.take(self._stored[key]) for key, table in self._tables.items())
        return [u for u in updates if u is not None]

    def _job_done(self) -> bool:
        job = self._job
        if job is None or not job.done():
            return job is None
        self._job = None
        error = job.exception()
        if isinstance(error, StorageError):
            self._fail(error)
        elif error is not None:
            raise error
        return True

    def _fail(self, error: StorageError) -> None:
        if self._error is None:
            self._error = error
            log.error("frame_table_failed", store=self._store.url, error=str(error))

    def _write(self, updates: Sequence[_Update]) -> None:
        """Chunks first, then the claims (background thread, or the caller's at close)."""
        for update in updates:
            table = update.table
            for index, buffers in update.chunks:
                self._put_all(table.chunk_objects(index, buffers))
                table.chunks_on_store = max(table.chunks_on_store, index + 1)
        for update in updates:
            if update.claim is not None:
                self._put_all(update.table.array_documents(update.claim))

    def _put_all(self, objects: Sequence[tuple[str, bytes | memoryview]]) -> None:
        for key, data in objects:
            self._store.put(key, data)
            self.bytes_written += len(data) if isinstance(data, bytes) else data.nbytes


def _chunk_rows_of(doc: bytes) -> int | None:
    """The rows per chunk a frame table column's metadata (v2 or v3) declares; None when unreadable."""
    try:
        parsed = json.loads(doc)
        chunks = parsed["chunks"] if "chunks" in parsed else parsed["chunk_grid"]["configuration"]["chunk_shape"]
        return int(chunks[0])
    except (ValueError, KeyError, IndexError, TypeError):
        return None
