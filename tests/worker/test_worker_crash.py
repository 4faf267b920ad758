"""SIGKILL of the worker mid-run: the sender counts worker_lost exactly, and the store opens with every claimed
frame correct and a frame table that claims no row whose frame is not stored."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from daemon.ipc.accounting import DropReason
from daemon.ipc.frame_sender import FrameSender
from daemon.ipc.stream_status import SenderState
from daemon.storage.worker_options import APPEND_DELAY_ENV

from .support import (
    COLUMNS,
    Offered,
    WorkerProcess,
    check_frames,
    make_frame,
    read_table,
    stream_settings,
    table_row,
    wait_until,
)


def table_claim_on_disk(store: Path, version: int) -> int:
    """Rows the frame table's metadata claims right now (read without zarr, while the worker writes)."""
    node = store / "cam0" / "frames" / "frame_id" / ("zarr.json" if version == 3 else ".zarray")
    try:
        shape: list[int] = json.loads(node.read_text())["shape"]
    except (FileNotFoundError, json.JSONDecodeError):
        return 0
    return shape[0]


@pytest.mark.parametrize("version", [3, 2])
def test_after_sigkill_counts_are_exact_and_the_store_is_correct(
    tmp_path: Path,
    version: int,
    make_sender: Callable[..., FrameSender],
    start_worker: Callable[..., WorkerProcess],
) -> None:
    store = tmp_path / "crash.zarr"
    sender = make_sender(stream_settings(store, version))
    worker = start_worker(sender.endpoint, env={APPEND_DELAY_ENV: "0.004"})
    assert sender.wait_for_worker(timeout_s=30) is not None, worker.log_text()
    offered = Offered()
    stop = threading.Event()

    def camera() -> None:  # offers until the worker is lost
        index = 0
        while not stop.is_set():
            if offered.offer(sender, make_frame(index, index), "cam0") is DropReason.WORKER_LOST:
                return
            index += 1
            stop.wait(0.002)

    thread = threading.Thread(target=camera, name="test-camera")
    thread.start()
    try:
        wait_until(lambda: table_claim_on_disk(store, version) >= 16, timeout_s=20, what="table rows on the store")
        acknowledged = sender.stats().frames_stored
        worker.kill()
        sender.worker_lost("process_killed")  # what the run does when its worker child exits
        thread.join(10)
    finally:
        stop.set()
        thread.join(10)
    assert worker.proc.returncode < 0

    result = sender.finish(timeout_s=5)
    assert result.state is SenderState.WORKER_LOST
    balance = result.stats.balance
    assert balance.in_flight == 0
    assert balance.delivered == offered.total
    assert balance.stored + balance.dropped.worker_lost + balance.dropped.queue_full == balance.delivered
    assert balance.dropped.queue_full == offered.dropped.get(DropReason.QUEUE_FULL, 0)
    assert len(result.stats.lost) == balance.dropped.worker_lost - offered.dropped.get(DropReason.WORKER_LOST, 0)

    accepted = offered.accepted["cam0"]
    claimed = check_frames(store, "cam0", accepted)
    assert claimed >= balance.stored >= acknowledged > 0  # every acknowledged frame survived the crash
    table = read_table(store, "cam0")
    rows = len(table["frame_id"])  # updated last: a crash mid-sync may leave the other columns longer
    assert 16 <= rows <= min(len(column) for column in table.values())
    assert max(len(column) for column in table.values()) <= claimed
    for name, column in table.items():
        expected = [table_row(f)[COLUMNS.index(name)] for f in accepted[: len(column)]]
        assert column.tolist() == expected, name
