"""``acqd worker``: its help, a worker for a sender bound to tcp://127.0.0.1, and refused arguments."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from daemon.ipc.frame_sender import FrameSender
from daemon.ipc.stream_status import SenderState
from daemon.storage.worker import EXIT_USAGE
from daemon.storage.worker_options import APPEND_DELAY_ENV

from .support import (
    REPO,
    Offered,
    WorkerProcess,
    check_frames,
    make_frame,
    read_table,
    stream_settings,
    table_row,
    table_rows,
)

ACQD = Path(sys.executable).parent / "acqd"


def test_help_lists_the_options() -> None:
    done = subprocess.run([ACQD, "worker", "--help"], capture_output=True, text=True, timeout=30, check=False)
    assert done.returncode == 0, done.stderr
    for option in ("--connect", "--worker-id", "--log-format", "--log-level"):
        assert option in done.stdout


def test_acqd_worker_serves_a_tcp_sender(tmp_path: Path, make_sender: Callable[..., FrameSender]) -> None:
    store = tmp_path / "tcp.zarr"
    sender = make_sender(stream_settings(store, 3), endpoint="tcp://127.0.0.1:0")
    assert sender.endpoint.startswith("tcp://127.0.0.1:")
    command = [str(ACQD), "worker", "--connect", sender.endpoint, "--worker-id", "remote-1", "--log-format", "json"]
    worker = WorkerProcess(command, tmp_path / "worker.log")
    try:
        info = sender.wait_for_worker(timeout_s=30)
        assert info is not None, worker.log_text()
        assert info.worker_id == "remote-1"
        offered = Offered()
        for index in range(11):
            offered.offer(sender, make_frame(index, index), "cam0")
        result = sender.finish(timeout_s=30)
        assert worker.wait() == 0, worker.log_text()
    finally:
        worker.stop()
    assert result.state is SenderState.FINISHED
    assert result.stats.balance.stored == 11
    accepted = offered.accepted["cam0"]
    check_frames(store, "cam0", accepted, claimed=11)
    assert table_rows(read_table(store, "cam0")) == [table_row(f) for f in accepted]


def test_a_bad_append_delay_is_refused_before_connecting() -> None:
    command = [sys.executable, "-m", "daemon.storage.worker", "--connect", "tcp://127.0.0.1:9"]
    env = {"PATH": "/usr/bin:/bin", APPEND_DELAY_ENV: "soon"}
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=30, check=False)
    assert done.returncode == EXIT_USAGE
    assert f"{APPEND_DELAY_ENV} must be a number of seconds between 0 and 60. Got 'soon' instead." in done.stderr


def test_a_bad_endpoint_is_refused() -> None:
    done = subprocess.run(
        [ACQD, "worker", "--connect", "udp://somewhere"], capture_output=True, text=True, timeout=30, check=False
    )
    assert done.returncode == EXIT_USAGE
    assert "endpoint scheme must be one of" in done.stderr
