"""``acqd ctl`` against a real daemon: JSON results on stdout, the error code and message on stderr with exit 1,
exit 3 when nobody answers; ``--set`` overrides and ``--file`` inline profiles."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from daemon.ctl import parse_assignment
from daemon.errors import AcqdError
from tests.serve.daemon_process import DaemonProcess, running_daemon, sim_profile, wait_for_state

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaemonProcess]:
    profiles = {"sim": sim_profile("sim", frames=40, store="sim.zarr")}
    with running_daemon(tmp_path_factory.mktemp("ctl"), profiles=profiles) as process:
        yield process


def ctl(endpoint: str, *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "daemon.cli", "ctl", "--endpoint", endpoint, "--timeout", "2", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("acquisition.frames=10", ("acquisition.frames", 10)),
        ("storage.store=today.zarr", ("storage.store", "today.zarr")),
        ('metadata.serial="10"', ("metadata.serial", "10")),
        ("acquisition.frames=null", ("acquisition.frames", None)),
        ("a.b=[1, 2]", ("a.b", [1, 2])),
        ("a.b=", ("a.b", "")),
    ],
)
def test_set_values_are_json_when_they_parse(text: str, expected: tuple[str, object]) -> None:
    assert parse_assignment(text) == expected


@pytest.mark.parametrize("text", ["frames", "=3"])
def test_set_needs_a_key_and_a_value(text: str) -> None:
    with pytest.raises(AcqdError, match="KEY=VALUE"):
        parse_assignment(text)


def test_start_status_and_errors_from_the_shell(daemon: DaemonProcess, tmp_path: Path) -> None:
    started = ctl(daemon.control, "start", "sim", "--set", "acquisition.frames=5", "--set", "storage.store=ctl.zarr")
    assert started.returncode == 0, started.stderr
    run_id = json.loads(started.stdout)["run_id"]
    with daemon.client() as client:
        assert wait_for_state(client, run_id)["state"] == "finished"
    status = ctl(daemon.control, "status", run_id)
    assert status.returncode == 0, status.stderr
    (run,) = json.loads(status.stdout)["runs"]
    assert run["counts"]["frames_stored"] == 5
    assert run["store"].endswith("ctl.zarr")

    profile = tmp_path / "inline.yaml"
    profile.write_text(sim_profile("inline", frames=3, store="x.zarr"))
    valid = ctl(daemon.control, "validate", "--file", str(profile))
    assert valid.returncode == 0, valid.stderr
    assert json.loads(valid.stdout)["valid"] is True

    missing = ctl(daemon.control, "stop", "no-such-run")
    assert missing.returncode == 1
    assert missing.stdout == ""
    assert "acqd ctl: stop: not_found: " in missing.stderr

    usage = ctl(daemon.control, "start", "sim", "--file", str(profile))
    assert usage.returncode == 2
    assert "exactly one" in usage.stderr


def test_no_daemon_exits_3(tmp_path: Path) -> None:
    result = ctl(f"ipc://{tmp_path}/nobody.sock", "--retries", "0", "--timeout", "0.3", "ping")
    assert result.returncode == 3
    assert "no reply" in result.stderr
