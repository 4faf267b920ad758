"""The soak's daemon: ``acqd serve`` as a subprocess that the harness may SIGKILL and restart on the same runtime
and state folders, plus what watches it: a ping sampler, RSS and fd counts, and its storage workers' pids.

stdout and stderr go through pipes (pumped into ``daemon.log`` / ``daemon.err`` by threads), not straight into
files: a file size limit put on a storage worker (the disk-full fault) then hits only the store's files, never the
log the worker inherits.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from daemon.ipc.client import Client, ControlTimeout, RemoteError

START_TIMEOUT_S = 30.0
PING_EVERY_S = 0.5
PING_TIMEOUT_S = 1.0


class SoakDaemon:
    """One ``acqd serve`` at a time, restartable; its folders live under ``root``."""

    def __init__(self, root: Path, runtime: Path, env: dict[str, str]) -> None:
        self.root = root
        self.runtime = runtime
        self.state = root / "state"
        self.env = env
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self._pumps: list[threading.Thread] = []
        self.log_path, self.err_path = root / "daemon.log", root / "daemon.err"

    @property
    def control(self) -> str:
        return f"ipc://{self.runtime}/control.sock"

    @property
    def events(self) -> str:
        return f"ipc://{self.runtime}/events.sock"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self) -> None:
        environ = {k: v for k, v in os.environ.items() if not k.startswith(("NOTIFY_SOCKET", "WATCHDOG_", "AWS_"))}
        environ.update(
            {"RUNTIME_DIRECTORY": str(self.runtime), "STATE_DIRECTORY": str(self.state), "PYTHONUNBUFFERED": "1"}
        )
        environ.update(self.env)
        command = [sys.executable, "-m", "daemon.cli", "serve", "--config", str(self.root / "acqd.yaml")]
        self.proc = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=environ, cwd=self.root
        )
        self.starts += 1
        assert self.proc.stdout is not None
        assert self.proc.stderr is not None
        self._pumps = [_pump(self.proc.stdout, self.log_path), _pump(self.proc.stderr, self.err_path)]
        self.wait_serving()

    def wait_serving(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            assert self.proc is not None
            assert self.proc.poll() is None, f"acqd serve exited:\n{self.stderr()}"
            try:
                with self.client(timeout_s=0.5) as client:
                    client.ping()
                return
            except ControlTimeout:
                assert time.monotonic() < deadline, f"acqd serve not serving after {START_TIMEOUT_S} s"

    def client(self, timeout_s: float = 10.0) -> Client:
        return Client(self.control, timeout_s=timeout_s, retries=0)

    def kill(self) -> None:
        """SIGKILL, as a crash; the storage workers (own sessions) live on."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)
        self._join_pumps()

    def terminate(self, timeout_s: float = 60.0) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout_s)
        self._join_pumps()
        return code

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            try:
                self.terminate(60.0)
            except subprocess.TimeoutExpired:
                self.kill()

    def _join_pumps(self) -> None:
        for pump in self._pumps:
            pump.join(5.0)

    def stderr(self) -> str:
        return self.err_path.read_text(errors="replace") if self.err_path.exists() else ""

    def logs(self) -> list[dict[str, Any]]:
        entries = []
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        for line in text.splitlines():
            with contextlib.suppress(ValueError):
                entries.append(json.loads(line))
        return entries

    def worker_pid(self, run_id: str) -> int | None:
        """The storage worker of ``run_id`` (from the ``worker_spawned`` log line)."""
        for entry in reversed(self.logs()):
            if entry.get("event") == "worker_spawned" and entry.get("run_id") == run_id:
                return int(entry["pid"])
        return None


def _pump(stream: IO[bytes], path: Path) -> threading.Thread:
    def run() -> None:
        with path.open("ab") as out:
            for line in iter(stream.readline, b""):
                out.write(line)
                out.flush()
        stream.close()

    thread = threading.Thread(target=run, daemon=True, name=f"soak-pump-{path.name}")
    thread.start()
    return thread


def proc_stats(pid: int) -> tuple[int, int]:
    """(RSS in KiB, open fds) of ``pid``."""
    rss = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1])
    return rss, len(os.listdir(f"/proc/{pid}/fd"))


@dataclass
class PingSampler:
    """Pings the daemon every ~0.5 s with a 1 s timeout while not paused; records every latency and failure."""

    daemon: SoakDaemon
    latencies: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    _paused: threading.Event = field(default_factory=threading.Event)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, daemon=True, name="soak-ping")
        self._thread.start()

    def pause(self) -> None:
        self._paused.set()
        time.sleep(PING_TIMEOUT_S + 0.1)  # let a ping in flight finish before the daemon goes away

    def resume(self) -> None:
        self._paused.clear()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5.0)

    def window(self, since: int) -> tuple[float, int]:
        """(max latency in ms, failures) since sample index ``since``."""
        sample = self.latencies[since:]
        return (max(sample) * 1000 if sample else 0.0), len(self.failures)

    def _run(self) -> None:
        client: Client | None = None
        while not self._stop.wait(PING_EVERY_S):
            if self._paused.is_set():
                if client is not None:
                    client.close()
                    client = None
                continue
            client = client or Client(self.daemon.control, timeout_s=PING_TIMEOUT_S, retries=0)
            began = time.monotonic()
            try:
                client.ping()
                self.latencies.append(time.monotonic() - began)
            except (ControlTimeout, RemoteError) as exc:
                if not self._paused.is_set():
                    self.failures.append(f"{time.strftime('%H:%M:%S')} {type(exc).__name__}: {exc}")
                client.close()
                client = None
        if client is not None:
            client.close()
