"""Storage errors: the worker reports them in FINAL, frames are counted, the exit status is non-zero, and what was
stored stays readable."""

from __future__ import annotations

import dataclasses
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from daemon.ipc.frame import Frame
from daemon.ipc.frame_sender import FrameSender
from daemon.ipc.stream_status import SenderState
from daemon.storage import CompressionSettings
from daemon.storage.worker import EXIT_FAILED

from .support import (
    FRAMES_PER_SHARD,
    HEIGHT,
    WIDTH,
    Offered,
    WorkerProcess,
    check_frames,
    make_frame,
    read_table,
    stream_settings,
    table_row,
    table_rows,
    wait_until,
)

FSIZE_LIMIT = 24 * 1024  # files up to 24 KiB: a shard of flat frames fits, a shard of noise does not


def flat_or_noise(index: int) -> Frame:
    """Frames of the first shard are flat (compress to almost nothing); later ones are noise (~49 KiB a shard)."""
    frame = make_frame(index, index)
    if index < FRAMES_PER_SHARD:
        pixels = np.full((HEIGHT, WIDTH), index, dtype=np.uint16)
    else:
        pixels = np.random.default_rng(index).integers(0, 1 << 16, (HEIGHT, WIDTH), dtype=np.uint16)
    return dataclasses.replace(frame, pixels=pixels)


def test_a_file_where_the_store_folder_should_go_fails_the_worker(
    tmp_path: Path, make_sender: Callable[..., FrameSender], start_worker: Callable[..., WorkerProcess]
) -> None:
    blocker = tmp_path / "data"
    blocker.write_text("not a folder")
    sender = make_sender(stream_settings(blocker / "run.zarr", 3))
    worker = start_worker(sender.endpoint)
    assert sender.wait_for_worker(timeout_s=30) is not None, worker.log_text()
    offered = Offered()
    for index in range(5):
        offered.offer(sender, make_frame(index, index), "cam0")

    assert worker.wait() == EXIT_FAILED, worker.log_text()
    result = sender.finish(timeout_s=10)
    assert result.state is SenderState.WORKER_LOST  # FINAL came before END: the worker is gone
    assert result.summary is not None
    assert str(blocker) in result.summary["error"]
    assert result.summary["frames_stored"] == {"cam0": 0}
    balance = result.stats.balance
    assert (balance.delivered, balance.stored, balance.in_flight) == (offered.total, 0, 0)
    assert balance.dropped.worker_lost + balance.dropped.queue_full == offered.total
    assert blocker.read_text() == "not a folder"


def test_a_write_refused_by_the_file_size_limit_is_reported_and_counted(
    tmp_path: Path, make_sender: Callable[..., FrameSender]
) -> None:
    store = tmp_path / "small.zarr"
    sender = make_sender(stream_settings(store, 3, compression=CompressionSettings("blosc-lz4", 1)))
    command = [sys.executable, "-m", "tests.worker.limited_worker", str(FSIZE_LIMIT), "--connect", sender.endpoint,
               "--log-format", "json"]  # fmt: skip
    worker = WorkerProcess(command, tmp_path / "worker.log")
    try:
        assert sender.wait_for_worker(timeout_s=30) is not None, worker.log_text()
        offered = Offered()
        for index in range(FRAMES_PER_SHARD):  # flat frames: the first shard is small enough
            offered.offer(sender, flat_or_noise(index), "cam0")
        wait_until(lambda: sender.stats().frames_stored == FRAMES_PER_SHARD, what="the first shard acknowledged")
        for index in range(FRAMES_PER_SHARD, 100):  # noise, a frame at a time, until the worker meets the error
            offered.offer(sender, flat_or_noise(index), "cam0")
            if worker.proc.poll() is not None:
                break
            time.sleep(0.03)
        assert worker.wait() == EXIT_FAILED, worker.log_text()
    finally:
        worker.stop()

    result = sender.finish(timeout_s=10)
    assert result.state is SenderState.WORKER_LOST  # FINAL came before END
    summary = result.summary
    assert summary is not None
    assert "File too large" in summary["error"]
    assert str(store) in summary["error"]
    assert summary["frames_stored"] == {"cam0": FRAMES_PER_SHARD}
    assert summary["frame_table"] == {"cam0": FRAMES_PER_SHARD}
    appended = summary["frames_appended"]["cam0"]
    assert appended > FRAMES_PER_SHARD
    # the append that met the error either still took its frame or rejected it (counted by the sender either way)
    rejected = [(e["reason"], e["frame_id"]) for e in worker.events() if e.get("event") == "worker_frames_rejected"]
    assert rejected in ([], [("storage_error", appended)])
    balance = result.stats.balance
    assert (balance.delivered, balance.stored, balance.in_flight) == (offered.total, FRAMES_PER_SHARD, 0)
    assert balance.dropped.worker_lost == offered.total - FRAMES_PER_SHARD
    # what was stored before the error is readable, and so is its table
    accepted = offered.accepted["cam0"]
    check_frames(store, "cam0", accepted, claimed=FRAMES_PER_SHARD)
    assert table_rows(read_table(store, "cam0")) == [table_row(f) for f in accepted[:FRAMES_PER_SHARD]]
