"""The sender vanishes without END: the worker stores what it received, finalises the store and exits 3."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from daemon.ipc.frame_sender import FrameSender
from daemon.storage.worker import EXIT_PEER_LOST

from .support import (
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

OFFERED = 13


def test_a_lost_sender_leaves_a_finalised_store(
    tmp_path: Path, make_sender: Callable[..., FrameSender], start_worker: Callable[..., WorkerProcess]
) -> None:
    store = tmp_path / "orphan.zarr"
    sender = make_sender(stream_settings(store, 2), liveness_timeout_s=0.5, heartbeat_interval_s=0.1)
    worker = start_worker(sender.endpoint)
    assert sender.wait_for_worker(timeout_s=30) is not None, worker.log_text()
    offered = Offered()
    for index in range(OFFERED):
        offered.offer(sender, make_frame(index, index), "cam0")
    wait_until(lambda: sender.stats().frames_sent == OFFERED, what="every frame sent to the worker")
    sender.close()  # no END, no more heartbeats

    assert worker.wait(timeout_s=15) == EXIT_PEER_LOST, worker.log_text()
    finished = [e for e in worker.events() if e.get("event") == "worker_finished"]
    assert len(finished) == 1
    assert finished[0]["frames_stored"] == {"cam0": OFFERED}
    assert "sent nothing" in finished[0]["error"]
    accepted = offered.accepted["cam0"]
    check_frames(store, "cam0", accepted, claimed=OFFERED)  # 13 frames: the last chunk was partial, now finalised
    assert table_rows(read_table(store, "cam0")) == [table_row(f) for f in accepted]
