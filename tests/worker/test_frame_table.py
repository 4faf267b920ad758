"""The frame table on its own: rows in chunks, claims bounded by the frames stored, read back by zarr-python."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import zarr
from ome_zarr_models import v04, v05

from daemon.errors import ConfigError, StorageError
from daemon.ipc.frame import FrameFlags
from daemon.storage import ArraySettings, StreamSettings, ZarrStream, ZarrVersion
from daemon.storage.file_store import FileStore
from daemon.storage.frame_table import FrameTables
from daemon.storage.memory_store import MemoryStore
from daemon.storage.sink import Buffer

from .support import COLUMNS, dimensions, read_table, table_rows, wait_until

CHUNK_ROWS = 4


def open_tables(path: Path, version: int, keys: tuple[str, ...] = ("cam",)) -> FrameTables:
    return FrameTables(FileStore(path), ZarrVersion(version), keys, chunk_rows=CHUNK_ROWS, sync_interval_s=0)


def row(i: int) -> tuple[int, int, int, int]:
    return (500 + i, -1 if i % 3 == 1 else 10 * i, 1_000 + i, i % 4)


def add_rows(tables: FrameTables, key: str, start: int, stop: int) -> None:
    for i in range(start, stop):
        frame_id, device, host, flags = row(i)
        tables.table(key).add(frame_id, None if device == -1 else device, host, FrameFlags(flags))


def shape_on_disk(path: Path, version: int, key: str = "cam") -> dict[str, int]:
    node = "zarr.json" if version == 3 else ".zarray"
    return {c: json.loads((path / key / "frames" / c / node).read_text())["shape"][0] for c in COLUMNS}


def sync_until(tables: FrameTables, done: Callable[[], bool], what: str) -> None:
    """Call sync() (as the worker does, when idle) until the store shows ``done``."""

    def step() -> bool:
        tables.sync()
        return done()

    wait_until(step, what=what)


@pytest.mark.parametrize("version", [2, 3])
def test_claims_never_pass_the_frames_stored(tmp_path: Path, version: int) -> None:
    path = tmp_path / "t.zarr"
    tables = open_tables(path, version)
    assert shape_on_disk(path, version) == dict.fromkeys(COLUMNS, 0)  # the arrays exist before any row
    add_rows(tables, "cam", 0, 10)
    tables.stored("cam", 6)
    sync_until(tables, lambda: shape_on_disk(path, version)["frame_id"] == 6, "6 rows claimed")
    assert shape_on_disk(path, version) == dict.fromkeys(COLUMNS, 6)
    assert table_rows(read_table(path, "cam")) == [row(i) for i in range(6)]
    tables.stored("cam", 25)  # more stored than rows (rows of frames appended): the claim stops at the rows
    sync_until(tables, lambda: shape_on_disk(path, version)["frame_id"] == 10, "10 rows claimed")
    assert tables.claimed == {"cam": 10}
    assert table_rows(read_table(path, "cam")) == [row(i) for i in range(10)]


@pytest.mark.parametrize("version", [2, 3])
def test_the_chunk_being_filled_is_rewritten_as_claims_grow(tmp_path: Path, version: int) -> None:
    path = tmp_path / "t.zarr"
    tables = open_tables(path, version)
    for stop in (1, 3, 4, 5, 9, 11):  # claims inside a chunk, at its end, and across chunk boundaries
        add_rows(tables, "cam", tables.table("cam").rows, stop)
        tables.stored("cam", stop)
        sync_until(tables, lambda: shape_on_disk(path, version)["frame_id"] == stop, f"{stop} rows claimed")  # noqa: B023
        assert table_rows(read_table(path, "cam")) == [row(i) for i in range(stop)]
    tables.close()
    assert tables.objects_written == 3 * len(COLUMNS)  # chunks 0, 1, 2 of each column, rewrites counted once
    chunk_dir = path / "cam" / "frames" / "frame_id" / ("c" if version == 3 else "")
    assert sorted(p.name for p in chunk_dir.iterdir() if p.name[0].isdigit()) == ["0", "1", "2"]


def test_close_claims_every_stored_frame_and_is_idempotent(tmp_path: Path) -> None:
    path = tmp_path / "t.zarr"
    tables = open_tables(path, 3, ("a", "b"))
    add_rows(tables, "a", 0, 7)
    add_rows(tables, "b", 0, 2)
    tables.stored("a", 7)
    tables.stored("b", 2)
    tables.close()
    tables.close()
    assert tables.claimed == {"a": 7, "b": 2}
    assert table_rows(read_table(path, "a")) == [row(i) for i in range(7)]
    assert table_rows(read_table(path, "b")) == [row(i) for i in range(2)]
    tables.sync()  # after close: nothing happens
    assert tables.claimed == {"a": 7, "b": 2}


def test_values_beyond_int64_and_unknown_timestamps_are_minus_one(tmp_path: Path) -> None:
    path = tmp_path / "t.zarr"
    tables = open_tables(path, 3)
    table = tables.table("cam")
    table.add(1 << 63, 1 << 63, -5, FrameFlags.INCOMPLETE | FrameFlags.AFTER_GAP)
    table.add((1 << 63) - 1, None, 7, FrameFlags.NONE)
    tables.stored("cam", 2)
    tables.close()
    assert table_rows(read_table(path, "cam")) == [(-1, -1, -5, 3), ((1 << 63) - 1, -1, 7, 0)]


def test_a_write_failure_is_sticky_and_raised_by_close(tmp_path: Path) -> None:
    path = tmp_path / "t.zarr"
    tables = open_tables(path, 3)
    add_rows(tables, "cam", 0, 3)
    tables.stored("cam", 2)
    sync_until(tables, lambda: shape_on_disk(path, 3)["frame_id"] == 2, "2 rows claimed")
    (path / "cam" / "frames" / "flags" / "c").rename(path / "moved")
    (path / "cam" / "frames" / "flags" / "c").write_text("a file where the chunk folder should be")
    add_rows(tables, "cam", 3, 6)
    tables.stored("cam", 6)
    sync_until(tables, lambda: tables.error is not None, "the failed write noticed")
    assert isinstance(tables.error, StorageError)
    with pytest.raises(StorageError, match=r"frame table on .* failed: cannot write"):
        tables.close()
    tables.close()  # idempotent: raised once
    assert shape_on_disk(path, 3)["frame_id"] == 2  # the claim did not move past what was written


def test_a_table_that_cannot_be_created_raises_at_once(tmp_path: Path) -> None:
    (tmp_path / "blocker").write_text("")
    with pytest.raises(StorageError, match="cannot write"):
        open_tables(tmp_path / "blocker" / "t.zarr", 3)


@pytest.mark.parametrize("bad", [0, -1, True, 2.5])
def test_chunk_rows_must_be_a_positive_integer(tmp_path: Path, bad: object) -> None:
    with pytest.raises(ConfigError, match=f"chunk_rows must be an integer >= 1. Got {bad!r} instead."):
        FrameTables(FileStore(tmp_path / "t.zarr"), ZarrVersion.V3, ["cam"], chunk_rows=bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("version", [2, 3])
def test_a_root_image_keeps_its_table_beside_its_levels(tmp_path: Path, version: int) -> None:
    path = tmp_path / "root.zarr"
    settings = StreamSettings(str(path), version, arrays=[ArraySettings("", "uint16", dimensions(version))])
    stream = ZarrStream(settings)
    tables = open_tables(path, version, ("",))
    for i in range(5):
        stream.append(np.full((48, 64), i, dtype=np.uint16))
    add_rows(tables, "", 0, 5)
    stream.close()
    tables.stored("", stream.frames_stored())
    tables.close()
    assert table_rows(read_table(path, "")) == [row(i) for i in range(5)]
    (v05.Image if version == 3 else v04.Image).from_zarr(zarr.open_group(str(path), mode="r"))
    assert np.asarray(zarr.open_array(str(path), path="0", mode="r")[:, 0, 0]).tolist() == list(range(5))


class HistoryStore(MemoryStore):
    """A memory store that keeps every state a crash could leave behind (a snapshot after each put), with the
    frames stored at that moment (``limit``, set by the test)."""

    def __init__(self) -> None:
        super().__init__()
        self.limit = 0
        self.history: list[tuple[dict[str, bytes], int]] = []

    def put(self, key: str, data: Buffer) -> None:
        super().put(key, data)
        self.history.append((self.objects, self.limit))


def claims(objects: dict[str, bytes]) -> dict[str, int]:
    return {c: json.loads(objects[f"cam/frames/{c}/zarr.json"])["shape"][0] for c in COLUMNS}


def claims_are_safe(objects: dict[str, bytes], stored: int) -> bool:
    """Every column claims at most ``stored`` rows, all in chunks present; frame_id claims the fewest."""
    claimed = claims(objects)
    present = all(f"cam/frames/{c}/c/{i}" in objects for c in COLUMNS for i in range(-(-claimed[c] // CHUNK_ROWS)))
    return present and max(claimed.values()) <= stored and claimed["frame_id"] == min(claimed.values())


def test_no_store_state_claims_a_row_before_its_chunk_or_its_frame_is_stored() -> None:
    store = HistoryStore()
    tables = FrameTables(store, ZarrVersion.V3, ["cam"], chunk_rows=CHUNK_ROWS, sync_interval_s=0)
    created = len(store.history)  # the group and the four arrays, claiming nothing
    for rows, stored in ((3, 2), (6, 5), (13, 9), (14, 13), (14, 14)):
        add_rows(tables, "cam", tables.table("cam").rows, rows)
        store.limit = stored
        tables.stored("cam", stored)
        sync_until(tables, lambda: claims(store.objects)["frame_id"] == stored, f"{stored} rows claimed")  # noqa: B023
    tables.close()
    states = store.history[created:]
    assert len(states) > 20
    assert [limit for objects, limit in states if not claims_are_safe(objects, limit)] == []
    assert claims(store.objects) == dict.fromkeys(COLUMNS, 14)
