"""The daemon's memory and open files stay flat over many runs: after a warm-up, more start/finish cycles of a
simulated-camera run through ``acqd serve`` grow its RSS by less than a bound and leave its fd count where it was.
The control server's reply cache (what a polling client fills) is bounded in bytes, not only in entries.

Figures (2-core box, 5-frame runs, ``status`` of every run polled every 20 ms): after 10 warm-up runs, 15 more
grew RSS by 2.5 MB, tapering (the reply cache and the run history filling up to their bounds); the fd count stayed
22. Without the reply cache's byte bound the same 15 runs grew it by 10.7 MB, linearly (1024 cached ``status``
replies of every run kept).
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from daemon.errors import ConfigError
from daemon.ipc.client import Client
from daemon.ipc.control_server import ControlServer
from tests.control.run_manager_double import InMemoryRunManager
from tests.serve.daemon_process import DaemonProcess, open_fds, rss_kib, running_daemon, sim_profile

WARMUP_RUNS = 10
MEASURED_RUNS = 15
RSS_GROWTH_BOUND_KIB = 8 * 1024
FD_SETTLE_S = 3.0


def run_once(client: Client, timeout_s: float = 20.0) -> None:
    """Start the 5-frame run and poll ``status`` of every run (large replies, each cached) until it ended."""
    run_id = client.start("sim")
    deadline = time.monotonic() + timeout_s
    while True:
        runs = {run["run_id"]: run for run in client.status()["runs"]}
        state = runs[run_id]["state"]
        if state in ("finished", "aborted", "failed"):
            break
        assert time.monotonic() < deadline, f"run {run_id} still {state} after {timeout_s} s"
        time.sleep(0.02)
    assert state == "finished", runs[run_id]


def settled_fds(daemon: DaemonProcess, expected: int) -> int:
    """The daemon's fd count once it is back to ``expected`` (a finished run's journal close may lag a little)."""
    deadline = time.monotonic() + FD_SETTLE_S
    while (fds := open_fds(daemon.proc.pid)) != expected and time.monotonic() < deadline:
        time.sleep(0.1)
    return fds


@pytest.mark.slow
@pytest.mark.timeout(90)
def test_rss_and_fds_stay_flat_after_warm_up(tmp_path: Path) -> None:
    with running_daemon(tmp_path, profiles={"sim": sim_profile("sim", frames=5)}) as daemon, daemon.client() as client:
        pid = daemon.proc.pid
        for _ in range(WARMUP_RUNS):
            run_once(client)
        time.sleep(0.3)
        rss0, fds0 = rss_kib(pid), open_fds(pid)
        samples = []
        for _ in range(MEASURED_RUNS):
            run_once(client)
            samples.append((rss_kib(pid), settled_fds(daemon, fds0)))
        assert client.ping()
    growth = max(rss for rss, _ in samples) - rss0
    assert growth < RSS_GROWTH_BOUND_KIB, f"RSS {rss0} KiB after warm-up, then {[rss for rss, _ in samples]}"
    assert [fds for _, fds in samples] == [fds0] * MEASURED_RUNS, f"fds after warm-up {fds0}, then {samples}"


def test_reply_cache_is_bounded_in_bytes() -> None:
    manager = InMemoryRunManager()
    with ControlServer("tcp://127.0.0.1:*", manager, reply_cache_bytes=2048) as srv, Client(srv.endpoint) as client:
        for _ in range(40):
            client.ping()
        stats = srv.stats()
        assert 0 < stats.cached_bytes <= 2048
        assert 1 < stats.cached < 40
        newest = client.call("status", {}, request_id="newest")
        assert client.call("status", {}, request_id="newest") == newest
        assert srv.stats().cache_hits == 1


def test_reply_cache_keeps_the_newest_reply_even_when_it_alone_exceeds_the_bound() -> None:
    manager = InMemoryRunManager()
    with ControlServer("tcp://127.0.0.1:*", manager, reply_cache_bytes=1) as srv, Client(srv.endpoint) as client:
        client.call("start", {"name": "demo"}, request_id="start-1")
        client.call("start", {"name": "demo"}, request_id="start-1")
        assert manager.calls["start"] == 1
        assert srv.stats().cached == 1


def test_a_reply_cache_without_bytes_is_refused() -> None:
    with pytest.raises(ConfigError, match=re.escape("reply_cache_bytes must be >= 1. Got 0 instead.")):
        ControlServer("tcp://127.0.0.1:*", InMemoryRunManager(), reply_cache_bytes=0)
