"""SIGTERM (or SIGINT) mid-stream: the worker stores the frames it already received, finalises the store, tells the
sender in FINAL and exits 128 + the signal."""

from __future__ import annotations

import signal
from collections.abc import Callable
from pathlib import Path

import pytest

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
    wait_until,
)

OFFERED = 40


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_stop_signal_finalises_what_was_received(
    tmp_path: Path,
    signum: signal.Signals,
    make_sender: Callable[..., FrameSender],
    start_worker: Callable[..., WorkerProcess],
) -> None:
    store = tmp_path / "stopped.zarr"
    sender = make_sender(stream_settings(store, 3))
    worker = start_worker(sender.endpoint, env={APPEND_DELAY_ENV: "0.02"})
    assert sender.wait_for_worker(timeout_s=30) is not None, worker.log_text()
    offered = Offered()
    for index in range(OFFERED):
        offered.offer(sender, make_frame(index, index), "cam0")
    wait_until(lambda: sender.stats().frames_sent == OFFERED, what="every frame sent to the worker")
    worker.proc.send_signal(signum)

    assert worker.wait() == 128 + signum, worker.log_text()
    result = sender.finish(timeout_s=10)
    assert result.state is SenderState.WORKER_LOST  # FINAL before END
    summary = result.summary
    assert summary is not None
    assert summary["error"] == f"stopped by {signum.name} before the end of the stream"
    # every frame the worker had received (all were sent, within its window) was stored and acknowledged
    assert summary["frames_stored"] == {"cam0": OFFERED}
    assert summary["frame_table"] == {"cam0": OFFERED}
    balance = result.stats.balance
    assert (balance.delivered, balance.stored, balance.in_flight, balance.dropped.total) == (OFFERED, OFFERED, 0, 0)
    accepted = offered.accepted["cam0"]
    check_frames(store, "cam0", accepted, claimed=OFFERED)
    assert table_rows(read_table(store, "cam0")) == [table_row(f) for f in accepted]
