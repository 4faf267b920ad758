"""A slow worker (ACQD_WORKER_APPEND_DELAY_S) fills the sender's queue: drops are queue_full, counted exactly."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from daemon.ipc.accounting import DropReason
from daemon.ipc.frame_sender import FrameSender
from daemon.ipc.stream_status import SenderState
from daemon.storage.worker_options import APPEND_DELAY_ENV

from .support import (
    Offered,
    WorkerProcess,
    check_frames,
    make_frame,
    read_table,
    stream_settings,
    table_row,
    table_rows,
)

OFFERS = 240
OFFER_EVERY_S = 0.002
DELAY_S = 0.01  # the worker takes ~5x longer per frame than the camera's period


def test_a_slow_worker_makes_exact_queue_full_drops(
    tmp_path: Path, make_sender: Callable[..., FrameSender], start_worker: Callable[..., WorkerProcess]
) -> None:
    store = tmp_path / "slow.zarr"
    sender = make_sender(stream_settings(store, 3), queue_max_frames=4)
    worker = start_worker(sender.endpoint, env={APPEND_DELAY_ENV: str(DELAY_S)})
    assert sender.wait_for_worker(timeout_s=30) is not None, worker.log_text()
    offered = Offered()
    for index in range(OFFERS):
        offered.offer(sender, make_frame(index, index), "cam0")
        time.sleep(OFFER_EVERY_S)

    result = sender.finish(timeout_s=30)
    assert worker.wait() == 0, worker.log_text()
    assert result.state is SenderState.FINISHED
    accepted = offered.accepted["cam0"]
    drops = offered.dropped.get(DropReason.QUEUE_FULL, 0)
    assert drops > 0  # the worker's window filled and the queue overflowed...
    assert len(accepted) > 64  # ...while frames still flowed
    assert set(offered.dropped) == {DropReason.QUEUE_FULL}
    balance = result.stats.balance
    assert (balance.delivered, balance.stored, balance.dropped.queue_full, balance.dropped.total) == (
        OFFERS, len(accepted), drops, drops
    )  # fmt: skip
    assert balance.in_flight == 0
    assert result.summary is not None
    assert result.summary["frames_stored"] == {"cam0": len(accepted)}
    # the store holds exactly the accepted frames, in order, and the table says which they were
    check_frames(store, "cam0", accepted, claimed=len(accepted))
    assert table_rows(read_table(store, "cam0")) == [table_row(f) for f in accepted]
    started = [e for e in worker.events() if e.get("event") == "worker_started"]
    assert started[0]["append_delay_s"] == DELAY_S
