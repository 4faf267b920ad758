"""Frames that do not fit their array (another shape or dtype, an unknown key) are rejected and counted; the
stream goes on and stores the rest."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import numpy as np

from daemon.ipc.frame_sender import FrameSender
from daemon.ipc.stream_status import SenderState

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


def test_frames_that_do_not_fit_are_rejected_and_the_rest_stored(
    tmp_path: Path, make_sender: Callable[..., FrameSender], start_worker: Callable[..., WorkerProcess]
) -> None:
    store = tmp_path / "mixed.zarr"
    sender = make_sender(stream_settings(store, 3))
    worker = start_worker(sender.endpoint)
    assert sender.wait_for_worker(timeout_s=30) is not None, worker.log_text()
    offered = Offered()
    misfits = {
        3: ("cam0", dataclasses.replace(make_frame(3, 3), pixels=np.zeros((8, 8), np.uint16))),
        5: ("cam0", dataclasses.replace(make_frame(5, 5), pixels=np.zeros((48, 64), np.float32))),
        7: ("nope", make_frame(7, 7)),
    }
    for index in range(12):
        key, frame = misfits.get(index, ("cam0", make_frame(index, index)))
        offered.offer(sender, frame, key)
    wait_until(lambda: sender.stats().frames_stored == 8, what="the first shard of fitting frames acknowledged")
    result = sender.finish(timeout_s=30)
    assert worker.wait() == 0, worker.log_text()

    assert result.state is SenderState.FINISHED
    balance = result.stats.balance
    assert (balance.delivered, balance.stored, balance.dropped.worker_lost, balance.in_flight) == (12, 9, 3, 0)
    assert sorted((lost.frame_id, lost.key) for lost in result.stats.lost) == [(3, "cam0"), (5, "cam0"), (7, "nope")]
    assert result.summary is not None
    assert (result.summary["frames_stored"], result.summary["error"]) == ({"cam0": 9}, None)
    rejected = [(e["reason"], e["frame_id"]) for e in worker.events() if e.get("event") == "worker_frames_rejected"]
    assert rejected == [("invalid_frame", 3), ("invalid_frame", 5), ("invalid_frame", 7)]
    fitting = [f for i, f in enumerate(offered.accepted["cam0"]) if f.frame_id not in (3, 5)]
    check_frames(store, "cam0", fitting, claimed=9)
    assert table_rows(read_table(store, "cam0")) == [table_row(f) for f in fitting]
