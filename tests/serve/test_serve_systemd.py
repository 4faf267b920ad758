"""``acqd serve`` under a stand-in for systemd (an AF_UNIX datagram socket as ``NOTIFY_SOCKET``, ``WATCHDOG_USEC``
set): READY=1 only once it answers, STATUS= lines with the number of runs, regular WATCHDOG=1 pings, and on
SIGTERM or SIGINT mid-run STOPPING=1, every run stopped gracefully, exit 0 with the store finalised and readable."""

from __future__ import annotations

import itertools
import shutil
import signal
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from daemon.ipc.client import Client
from tests.serve.daemon_process import (
    assert_store_matches_pattern,
    sim_profile,
    spawn_daemon,
    wait_for_state,
)

pytestmark = pytest.mark.slow

WATCHDOG_USEC = 400_000


@dataclass
class FakeSystemd:
    """Receives sd_notify datagrams on a thread and keeps them with their arrival time."""

    sock: socket.socket
    path: str
    received: list[tuple[float, dict[str, str]]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def listen(self) -> None:
        while True:
            try:
                data = self.sock.recv(4096)
            except OSError:
                return
            fields = dict(line.split("=", 1) for line in data.decode().splitlines() if "=" in line)
            with self.lock:
                self.received.append((time.monotonic(), fields))

    def messages(self) -> list[tuple[float, dict[str, str]]]:
        with self.lock:
            return list(self.received)

    def wait_for(self, predicate: Callable[[dict[str, str]], bool], timeout_s: float = 20.0) -> float:
        """The arrival time of the first message matching ``predicate``."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for when, fields in self.messages():
                if predicate(fields):
                    return when
            time.sleep(0.01)
        raise AssertionError(f"no such notification; got {[fields for _, fields in self.messages()]}")


@pytest.fixture
def systemd() -> Iterator[FakeSystemd]:
    folder = tempfile.mkdtemp(prefix="acqd-n-", dir="/tmp")  # AF_UNIX paths are short
    path = f"{folder}/notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    fake = FakeSystemd(sock, path)
    thread = threading.Thread(target=fake.listen, daemon=True)
    thread.start()
    yield fake
    sock.shutdown(socket.SHUT_RDWR)
    sock.close()
    thread.join(timeout=5)
    shutil.rmtree(folder, ignore_errors=True)


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_ready_watchdog_status_then_a_graceful_stop(
    tmp_path: Path, systemd: FakeSystemd, stop_signal: signal.Signals
) -> None:
    env = {"NOTIFY_SOCKET": systemd.path, "WATCHDOG_USEC": str(WATCHDOG_USEC)}
    profiles = {"live": sim_profile("live", until_stopped=True, store="live.zarr", period_s=0.01)}
    daemon = spawn_daemon(tmp_path, profiles=profiles, env=env, wait=False)
    try:
        systemd.wait_for(lambda fields: fields.get("READY") == "1")
        with Client(daemon.control, timeout_s=1.0, retries=0) as client:  # READY means answering, at once
            assert client.ping()["pong"] is True
            assert [profile["name"] for profile in client.profiles()] == ["live"]  # profiles loaded before READY
            run_id = client.start("live")
            wait_for_state(client, run_id, ("running",))
        systemd.wait_for(lambda fields: fields.get("STATUS", "").startswith("serving: 1 run(s) live"), 5)

        window_start = time.monotonic()
        time.sleep(1.0)
        pings = [when for when, fields in systemd.messages() if fields.get("WATCHDOG") == "1" and when >= window_start]
        assert len(pings) >= 4  # every interval/2 at the latest (0.2 s)
        assert max(b - a for a, b in itertools.pairwise(pings)) < WATCHDOG_USEC / 1e6 / 2 + 0.1

        signalled = time.monotonic()
        daemon.signal(stop_signal)
        assert daemon.proc.wait(timeout=20) == 0
        stopping = systemd.wait_for(
            lambda fields: fields.get("STOPPING") == "1" and fields.get("STATUS", "").startswith("stopping: 1 run"), 1
        )
        assert stopping - signalled < 2
        summaries = [entry for entry in daemon.logs() if entry.get("event") == "run_summary"]
        assert len(summaries) == 1
        (summary,) = summaries
        assert summary["outcome"] == "finished"
        assert summary["cause"] == "stop"
        assert summary["store_finalized"] is True
        assert assert_store_matches_pattern(Path(summary["store"])) == summary["stored"] > 0
        assert any(entry.get("event") == "serve_stopped" for entry in daemon.logs())
    finally:
        daemon.close()
