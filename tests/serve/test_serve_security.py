"""Who may talk to the daemon: with CURVE on tcp://127.0.0.1 a known client key is served and unknown or plain
clients get nothing; a non-local endpoint without CURVE, or an invalid configuration, stops the daemon before it
is ready with a clear message."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from daemon.ipc.client import Client, ControlTimeout
from daemon.ipc.curve import CurveClientSettings, generate_keypair
from daemon.ipc.events import Events
from tests.serve.daemon_process import (
    DaemonProcess,
    running_daemon,
    sim_profile,
    spawn_daemon,
    wait_for_state,
    wait_until_serving,
)

pytestmark = pytest.mark.slow

CURVE_CONFIG = {
    "control": '{endpoint: "tcp://127.0.0.1:*"}',
    "events": '{endpoint: "tcp://127.0.0.1:*"}',
    "curve": "{keys_dir: keys, clients_dir: clients}",
}


def ready_endpoints(daemon: DaemonProcess, timeout_s: float = 20.0) -> tuple[str, str]:
    """The bound control and events endpoints, from the daemon's ``serve_ready`` log line."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for entry in daemon.logs():
            if entry.get("event") == "serve_ready":
                return entry["control"], entry["events"]
        assert daemon.proc.poll() is None, daemon.stderr()
        time.sleep(0.05)
    raise AssertionError("the daemon never logged serve_ready")


def test_curve_serves_known_keys_only(tmp_path: Path) -> None:
    clients = tmp_path / "clients"
    clients.mkdir()
    known_public, known_secret = generate_keypair(tmp_path / "gui", "gui")
    (clients / "gui.key").write_bytes(known_public.read_bytes())
    _, stranger_secret = generate_keypair(tmp_path / "stranger", "stranger")
    daemon = spawn_daemon(tmp_path, profiles={"sim": sim_profile(frames=5)}, config=CURVE_CONFIG, wait=False)
    try:
        control, events_endpoint = ready_endpoints(daemon)
        assert control.startswith("tcp://127.0.0.1:")
        server_key = tmp_path / "keys" / "server.key"
        known = CurveClientSettings(server_public_key=server_key, client_secret_key=known_secret)
        stranger = CurveClientSettings(server_public_key=server_key, client_secret_key=stranger_secret)
        wait_until_serving(daemon, control, curve=known)
        for refused in (stranger, None):
            with Client(control, timeout_s=0.5, retries=0, curve=refused) as client, pytest.raises(ControlTimeout):
                client.ping()
        with (
            Events(events_endpoint, timeout_s=0.5, curve=known) as events,
            Events(events_endpoint, timeout_s=0.5) as plain,
        ):
            time.sleep(0.3)
            with Client(control, timeout_s=5, retries=0, curve=known) as client:
                run_id = client.start("sim")
                assert wait_for_state(client, run_id)["state"] == "finished"
            first = events.recv(timeout_s=5)
            assert first is not None
            assert first.data["run_id"] == run_id
            assert plain.recv(timeout_s=0.2) is None
        log_text = daemon.log_path.read_text()
        assert known_secret.read_text().split('secret-key = "')[1][:40] not in log_text
        assert any(entry.get("event") == "curve_client_denied" for entry in daemon.logs())
        assert daemon.terminate() == 0
    finally:
        daemon.close()


def test_a_non_local_endpoint_without_curve_is_refused_at_start(tmp_path: Path) -> None:
    endpoint = "tcp://0.0.0.0:*"
    daemon = spawn_daemon(tmp_path, config={"control": f"{{endpoint: {json.dumps(endpoint)}}}"}, wait=False)
    try:
        assert daemon.proc.wait(timeout=20) == 1
        message = daemon.stderr()
        assert "refusing to start" in message
        assert f"refusing to bind {endpoint!r} without CURVE" in message
        assert any(entry.get("event") == "serve_refused" for entry in daemon.logs())
    finally:
        daemon.close()


def test_an_invalid_configuration_is_refused_with_its_line(tmp_path: Path) -> None:
    daemon = spawn_daemon(tmp_path, config={"runs": "{max_runs: 0}", "colour": "blue"}, wait=False)
    try:
        assert daemon.proc.wait(timeout=20) == 1
        message = daemon.stderr()
        assert "acqd.yaml:4: runs.max_runs: must be between 1 and 64. Got 0 instead." in message
        assert "acqd.yaml:5: colour: unknown key." in message
    finally:
        daemon.close()


def test_a_second_daemon_on_the_same_runtime_folder_is_refused(tmp_path: Path) -> None:
    with running_daemon(tmp_path / "first") as first:
        second = spawn_daemon(tmp_path / "second", env={"RUNTIME_DIRECTORY": str(first.runtime)}, wait=False)
        try:
            assert second.proc.wait(timeout=20) == 1
            assert f"another acqd serve (pid {first.proc.pid}) is running" in second.stderr()
        finally:
            second.close()
        with first.client() as client:  # the first one still owns its sockets
            assert client.status()["daemon"]["pid"] == first.proc.pid
