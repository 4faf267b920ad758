"""``storage.worker_endpoint``: the run binds a loopback TCP endpoint and waits for ``acqd worker --connect``."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from pytest_mock import MockerFixture

from daemon.errors import StorageError
from daemon.ipc.frame_receiver import FrameReceiver
from daemon.ipc.stream_settings import ReceiverSettings
from daemon.run import Run
from daemon.storage.worker import EXIT_FAILED, StorageWorker

from .support import check_balance, check_pixels, profile, simulated

ACQD = Path(sys.executable).parent / "acqd"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_an_external_worker_stores_the_run(data_root: Path, tmp_path: Path) -> None:
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    run = Run(profile(data_root, [simulated()], acquisition={"frames": 10}, worker_endpoint=endpoint))
    started: list[BaseException | None] = []
    starter = threading.Thread(target=lambda: started.append(_start(run)), daemon=True)
    starter.start()
    # the worker may connect before the run binds: ZeroMQ retries until it is there
    log = (tmp_path / "worker.log").open("w")
    worker = subprocess.Popen(
        [str(ACQD), "worker", "--connect", endpoint, "--log-format", "json"], stdout=log, stderr=subprocess.STDOUT
    )
    try:
        starter.join(30)
        assert started == [None]
        assert run.worker_pid is None
        assert run.wait(30)
        assert worker.wait(30) == 0
    finally:
        if worker.poll() is None:
            worker.kill()
        log.close()
    summary = run.summary
    assert summary is not None
    assert (summary["outcome"], summary["stored"], summary["worker"]["exit"]) == ("finished", 10, None)
    check_balance(summary)
    assert check_pixels(data_root / "run.zarr") == list(range(10))


def _start(run: Run) -> BaseException | None:
    try:
        run.start()
    except BaseException as exc:  # handed to the test thread
        return exc
    return None


def test_a_worker_that_cannot_open_its_store_fails_the_start_with_its_reason(
    data_root: Path, mocker: MockerFixture
) -> None:
    # a store that fails only on the worker's side (e.g. its host's disk): injected, as no real part fails on demand
    mocker.patch("daemon.storage.worker.open_store", side_effect=StorageError("the disk said EIO"))
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    run = Run(profile(data_root, [simulated()], acquisition={"frames": 3}, worker_endpoint=endpoint))
    receiver = FrameReceiver(ReceiverSettings(endpoint, worker_id="w1"))
    status: list[int] = []
    worker = threading.Thread(target=lambda: status.append(StorageWorker(receiver).run()), daemon=True)
    worker.start()
    try:
        with pytest.raises(StorageError, match="the storage worker could not open the store: the disk said EIO"):
            run.start()
        worker.join(10)
    finally:
        receiver.close()
    assert status == [EXIT_FAILED]
    summary = run.summary
    assert summary is not None
    assert (summary["outcome"], summary["cause"], summary["delivered"]) == ("failed", "start_failed", 0)
    assert summary["errors"][0] == "the storage worker could not open the store: the disk said EIO", summary["errors"]
    assert len(summary["errors"]) == 1, summary["errors"]
