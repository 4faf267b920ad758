"""``storage.worker_endpoint``: the run binds a loopback TCP endpoint and waits for ``acqd worker --connect``."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
from pathlib import Path

from daemon.run import Run

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
