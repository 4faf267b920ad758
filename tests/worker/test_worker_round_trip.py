"""Frames go through the real worker child into a sharded v3 or a v2 store: every value, row and count is exact."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import zarr
from ome_zarr_models import v04, v05

from daemon.ipc.frame_sender import FrameSender
from daemon.ipc.stream_status import SenderState

from .support import (
    FRAMES_PER_CHUNK,
    FRAMES_PER_SHARD,
    HEIGHT,
    WIDTH,
    Offered,
    WorkerProcess,
    check_frames,
    disk_objects,
    make_frame,
    read_table,
    stream_settings,
    table_row,
    table_rows,
    wait_until,
)

KEYS = ("cam0", "cam1")
PER_KEY = 20  # frames per key: not a multiple of the shard (v3) or chunk (v2), so the last one is partial
FRAME_BYTES = HEIGHT * WIDTH * 2


def frame_ids(key_index: int) -> list[int]:
    """Camera counters with a jump (frames lost upstream), different per camera."""
    ids = [1000 * (key_index + 1) + i for i in range(PER_KEY)]
    return ids[:10] + [i + 3 for i in ids[10:]]


def stream_frames(sender: FrameSender, offered: Offered, count: int) -> None:
    for index in range(count):
        for k, key in enumerate(KEYS):
            frame_id = frame_ids(k)[index]
            assert offered.offer(sender, make_frame(frame_id, index + k), key) is None


@pytest.mark.parametrize("version", [3, 2])
def test_frames_tables_acks_and_summary_are_exact(
    tmp_path: Path,
    version: int,
    make_sender: Callable[..., FrameSender],
    start_worker: Callable[..., WorkerProcess],
) -> None:
    store = tmp_path / "run.zarr"
    sender = make_sender(stream_settings(store, version, KEYS))
    worker = start_worker(sender.endpoint)
    assert sender.wait_for_worker(timeout_s=30) is not None, worker.log_text()
    offered = Offered()

    stream_frames(sender, offered, PER_KEY)
    per_object = FRAMES_PER_SHARD if version == 3 else FRAMES_PER_CHUNK
    acked = PER_KEY - PER_KEY % per_object
    # frames are acknowledged while the run goes on, as their shards/chunks are stored; never the partial one
    wait_until(lambda: sender.stats().frames_stored == 2 * acked, what=f"{2 * acked} frames acknowledged")
    assert sender.stats().unacked_frames == 2 * (PER_KEY - acked)

    result = sender.finish(timeout_s=30)
    assert worker.wait() == 0, worker.log_text()
    assert result.state is SenderState.FINISHED
    balance = result.stats.balance
    assert (balance.delivered, balance.stored, balance.in_flight, balance.dropped.total) == (
        2 * PER_KEY,
        2 * PER_KEY,
        0,
        0,
    )

    summary = dict(result.summary or {})
    disk_bytes, disk_chunks = disk_objects(store)
    assert summary.pop("bytes_written") >= disk_bytes
    assert summary.pop("objects_written") == disk_chunks
    assert summary == {
        "frames_appended": dict.fromkeys(KEYS, PER_KEY),
        "frames_stored": dict.fromkeys(KEYS, PER_KEY),
        "bytes_in": 2 * PER_KEY * FRAME_BYTES,
        "error": None,
        "frame_table": dict.fromkeys(KEYS, PER_KEY),
    }

    for key in KEYS:
        frames = offered.accepted[key]
        check_frames(store, key, frames, claimed=PER_KEY)
        table = read_table(store, key)
        assert {name: column.dtype for name, column in table.items()} == {
            "frame_id": np.int64, "device_timestamp_ns": np.int64, "host_time_ns": np.int64, "flags": np.uint8,
        }  # fmt: skip
        assert table_rows(table) == [table_row(f) for f in frames]


@pytest.mark.parametrize("version", [3, 2])
def test_the_store_stays_valid_ome_zarr_with_its_tables(
    tmp_path: Path,
    version: int,
    make_sender: Callable[..., FrameSender],
    start_worker: Callable[..., WorkerProcess],
) -> None:
    store = tmp_path / "run.zarr"
    sender = make_sender(stream_settings(store, version, KEYS))
    worker = start_worker(sender.endpoint)
    assert sender.wait_for_worker(timeout_s=30) is not None, worker.log_text()
    offered = Offered()
    stream_frames(sender, offered, 5)
    assert sender.finish(timeout_s=30).state is SenderState.FINISHED
    assert worker.wait() == 0, worker.log_text()

    root = zarr.open_group(str(store), mode="r")
    members: dict[str, Any] = dict(root.members(max_depth=None))
    arrays = {"0"} | {f"frames/{c}" for c in ("frame_id", "device_timestamp_ns", "host_time_ns", "flags")}
    assert {name for name, node in members.items() if isinstance(node, zarr.Array)} == {
        f"{key}/{a}" for key in KEYS for a in arrays
    }
    for key in KEYS:
        (v05.Image if version == 3 else v04.Image).from_zarr(root[key])
    attrs_file = store / KEYS[0] / "frames" / ("zarr.json" if version == 3 else ".zattrs")
    attrs = json.loads(attrs_file.read_text())
    attrs = attrs["attributes"] if version == 3 else attrs
    assert set(attrs["acqd_frame_table"]["columns"]) == {"frame_id", "device_timestamp_ns", "host_time_ns", "flags"}


def test_a_run_without_frame_table_writes_none(
    tmp_path: Path, make_sender: Callable[..., FrameSender], start_worker: Callable[..., WorkerProcess]
) -> None:
    store = tmp_path / "plain.zarr"
    sender = make_sender(stream_settings(store, 3), frame_table=False)
    worker = start_worker(sender.endpoint)
    assert sender.wait_for_worker(timeout_s=30) is not None, worker.log_text()
    offered = Offered()
    for index in range(6):
        offered.offer(sender, make_frame(index, index), "cam0")
    result = sender.finish(timeout_s=30)
    assert worker.wait() == 0, worker.log_text()
    assert result.summary is not None
    assert (result.summary["frame_table"], result.summary["frames_stored"]) == ({}, {"cam0": 6})
    check_frames(store, "cam0", offered.accepted["cam0"], claimed=6)
    assert not (store / "cam0" / "frames").exists()
