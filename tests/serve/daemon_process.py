"""``acqd serve`` as a subprocess for the serve tests: start it with a configuration, wait until it answers, read
its JSON log, stop it; plus the profiles the tests run and a reader for the stores they write.

The daemon is driven only through its sockets (``Client``, ``Events``) and signals, as a GUI or systemd would.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from daemon.cameras import pattern
from daemon.ipc.client import Client, ControlTimeout
from daemon.ipc.events import Event, Events
from daemon.metrics import process_rss_bytes

REPO = Path(__file__).resolve().parents[2]
TERMINAL = ("finished", "aborted", "failed")
START_TIMEOUT_S = 20.0
BASE_CONFIG = {
    "profiles_dir": "profiles",
    "data_root": "data",
    "log": "{format: json, level: INFO}",
    "runs": "{metrics_interval_s: 0.2, stop_timeout_s: 20.0}",
}


def sim_profile(
    name: str = "sim",
    *,
    frames: int | None = 30,
    until_stopped: bool = False,
    store: str = "sim.zarr",
    size: int = 64,
    period_s: float = 0.005,
    output_key: str = "",
    queue: str = "8 MiB",
) -> str:
    """A small simulated-camera profile (radial sine, uint16) as YAML text."""
    stop = "until_stopped: true" if until_stopped else f"frames: {frames}"
    key = f"\n    output_key: {json.dumps(output_key)}"
    return f"""\
# {name}: a small simulated camera for the serve tests
cameras:
  - name: {name}
    driver: simulated
    settings: {{pattern: radial_sine, height: {size}, width: {size}, dtype: uint16, frame_period_s: {period_s}}}{key}
    dimensions:
      - {{name: t, type: time, array_size_px: 0, chunk_size_px: 16}}
      - {{name: y, type: space, array_size_px: {size}, chunk_size_px: {size}}}
      - {{name: x, type: space, array_size_px: {size}, chunk_size_px: {size}}}
acquisition:
  {stop}
  queue_bytes: {queue}
storage:
  store: {store}
  version: 3
  overwrite: true
  compression: {{codec: blosc-lz4, level: 1, shuffle: byte}}
  max_threads: 1
"""


def genicam_profile(cti: Path, *, store: str = "gc.zarr", serial: str | None = None) -> str:
    """A fake-GenTL-producer profile (Mono16 64x64, free run) acquiring until stopped."""
    select = f"\n      select: {{serial_number: {json.dumps(serial)}}}" if serial else ""
    return f"""\
# fake GenTL producer
cameras:
  - name: cam
    driver: genicam
    settings:
      producers: [{json.dumps(str(cti))}]{select}
      pixel_format: Mono16
      width: 64
      height: 64
      frame_rate_hz: 100.0
      timeout_s: 5.0
    dimensions:
      - {{name: t, type: time, array_size_px: 0, chunk_size_px: 16}}
      - {{name: y, type: space, array_size_px: 64, chunk_size_px: 64}}
      - {{name: x, type: space, array_size_px: 64, chunk_size_px: 64}}
acquisition:
  until_stopped: true
  queue_bytes: 8 MiB
storage:
  store: {store}
  version: 3
  overwrite: true
  max_threads: 1
"""


@dataclass
class DaemonProcess:
    """One ``acqd serve`` subprocess and where it lives."""

    proc: subprocess.Popen[bytes]
    root: Path
    runtime: Path
    control: str
    events: str
    data_root: Path
    profiles: Path
    log_path: Path
    err_path: Path
    owns_runtime: bool = True

    def client(self, timeout_s: float = 5.0, retries: int = 0, **kwargs: Any) -> Client:
        return Client(self.control, timeout_s=timeout_s, retries=retries, **kwargs)

    def subscribe(self, timeout_s: float = 5.0, **kwargs: Any) -> Events:
        """A subscriber to every topic, connected (give it a moment before the events of interest start)."""
        events = Events(self.events, timeout_s=timeout_s, **kwargs)
        time.sleep(0.2)  # PUB/SUB: let the subscription reach the publisher
        return events

    def logs(self) -> list[dict[str, Any]]:
        entries = []
        for line in self.log_path.read_text(errors="replace").splitlines():
            with contextlib.suppress(ValueError):
                entries.append(json.loads(line))
        return entries

    def stderr(self) -> str:
        return self.err_path.read_text(errors="replace")

    def signal(self, sig: int) -> None:
        self.proc.send_signal(sig)

    def terminate(self, timeout_s: float = 30.0) -> int:
        """SIGTERM and wait; returns the exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=timeout_s)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        if self.owns_runtime:
            shutil.rmtree(self.runtime, ignore_errors=True)


def spawn_daemon(
    root: Path,
    *,
    profiles: Mapping[str, str] | None = None,
    config: Mapping[str, str] | None = None,
    raw_config: str | None = None,
    no_config: bool = False,
    env: Mapping[str, str] | None = None,
    wait: bool = True,
) -> DaemonProcess:
    """Start ``acqd serve`` with its folders under ``root`` (runtime folder in /tmp: ipc paths are short).

    The configuration file holds :data:`BASE_CONFIG` updated with ``config`` (top-level key -> YAML value), or
    exactly ``raw_config`` when given; ``no_config`` starts it without ``--config`` (every default)."""
    shared = (env or {}).get("RUNTIME_DIRECTORY")  # another daemon's runtime folder: not ours to remove
    runtime = Path(shared) if shared else Path(tempfile.mkdtemp(prefix="acqd-t-", dir="/tmp"))
    os.chmod(runtime, 0o700)
    (root / "profiles").mkdir(parents=True, exist_ok=True)
    (root / "data").mkdir(exist_ok=True)
    for name, text in (profiles or {}).items():
        (root / "profiles" / f"{name}.yaml").write_text(text)
    config_path = root / "acqd.yaml"
    sections = {**BASE_CONFIG, **(config or {})}
    text = "".join(f"{key}: {value}\n" for key, value in sections.items())
    config_path.write_text(raw_config if raw_config is not None else text)
    environ = {k: v for k, v in os.environ.items() if k not in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID")}
    environ.update({"RUNTIME_DIRECTORY": str(runtime), "PYTHONUNBUFFERED": "1", **(env or {})})
    log_path, err_path = root / "daemon.log", root / "daemon.err"
    with open(log_path, "ab") as out, open(err_path, "ab") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "daemon.cli", "serve", *([] if no_config else ["--config", str(config_path)])],
            stdout=out,
            stderr=err,
            env=environ,
            cwd=root,
        )
    daemon = DaemonProcess(
        proc=proc,
        root=root,
        runtime=runtime,
        control=f"ipc://{runtime}/control.sock",
        events=f"ipc://{runtime}/events.sock",
        data_root=root / "data",
        profiles=root / "profiles",
        log_path=log_path,
        err_path=err_path,
        owns_runtime=not shared,
    )
    if wait:
        try:
            wait_until_serving(daemon)
        except BaseException:
            daemon.close()
            raise
    return daemon


def wait_until_serving(daemon: DaemonProcess, endpoint: str | None = None, **client_kwargs: Any) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        exited = daemon.proc.poll()
        assert exited is None, f"acqd serve exited with {exited}:\n{daemon.stderr()}"
        try:
            with Client(endpoint or daemon.control, timeout_s=0.3, retries=0, **client_kwargs) as client:
                client.ping()
            return
        except ControlTimeout:
            assert time.monotonic() < deadline, f"acqd serve did not answer in {START_TIMEOUT_S} s:\n{daemon.stderr()}"


@contextlib.contextmanager
def running_daemon(root: Path, **kwargs: Any) -> Iterator[DaemonProcess]:
    daemon = spawn_daemon(root, **kwargs)
    try:
        yield daemon
    finally:
        daemon.close()


def wait_for_state(client: Client, run_id: str, states: tuple[str, ...] = TERMINAL, timeout_s: float = 20.0) -> dict:
    """Poll ``status`` until the run is in one of ``states``; returns its status."""
    deadline = time.monotonic() + timeout_s
    while True:
        run = client.status(run_id)["runs"][0]
        if run["state"] in states:
            return dict(run)
        assert time.monotonic() < deadline, f"run {run_id} still {run['state']} after {timeout_s} s: {run}"
        time.sleep(0.05)


def collect(events: Events, until: Callable[[Event], bool], timeout_s: float = 20.0) -> list[Event]:
    """Every event received until ``until(event)`` is true (that event included)."""
    seen: list[Event] = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        event = events.recv(timeout_s=max(0.01, deadline - time.monotonic()))
        if event is None:
            break
        seen.append(event)
        if until(event):
            return seen
    raise AssertionError(f"condition not met; got {[(e.topic, e.data.get('state')) for e in seen]}")


def expected_frames(frame_ids: np.ndarray, size: int = 64, bits: int | None = None) -> np.ndarray:
    """The reference radial sine for every frame id (what a simulated or fake GenTL camera delivers)."""
    if len(frame_ids) == 0:
        return np.empty((0, size, size), dtype=np.uint16)
    return np.stack([pattern.radial_sine(int(k), size, size, np.uint16, bits) for k in frame_ids])


def read_store(path: Path, key: str = "") -> tuple[np.ndarray, np.ndarray]:
    """The level-0 images and the frame ids of array ``key`` of a finished store, read with zarr-python."""
    import zarr  # test-only oracle (importing it turns Blosc threads off process-wide: fine in tests)

    group = zarr.open_group(str(path), mode="r")
    prefix = f"{key}/" if key else ""
    images = np.asarray(group[f"{prefix}0"][:])
    frame_ids = np.asarray(group[f"{prefix}frames/frame_id"][:])
    return images, frame_ids


def assert_store_matches_pattern(path: Path, key: str = "", size: int = 64, bits: int | None = None) -> int:
    """Every stored frame equals the reference pattern of its frame id; returns the number of frames."""
    images, frame_ids = read_store(path, key)
    assert len(images) == len(frame_ids)
    assert len(np.unique(frame_ids)) == len(frame_ids)
    np.testing.assert_array_equal(images, expected_frames(frame_ids, size, bits))
    return len(frame_ids)


def rss_kib(pid: int) -> int:
    """Resident memory of process ``pid`` in KiB (:func:`daemon.metrics.process_rss_bytes`)."""
    rss = process_rss_bytes(pid)
    assert rss is not None, f"no VmRSS for process {pid}"
    return rss // 1024


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))
