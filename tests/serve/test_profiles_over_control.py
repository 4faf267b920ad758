"""Profiles through the control socket: inline profiles with overrides, invalid ones answered ``invalid_profile``
with file, line and field, ``validate``, and ``reload`` (command and SIGHUP) picking up a new profile file."""

from __future__ import annotations

import re
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from daemon.ipc.client import Client, RemoteError
from tests.serve.daemon_process import (
    DaemonProcess,
    assert_store_matches_pattern,
    running_daemon,
    sim_profile,
    wait_for_state,
)

pytestmark = pytest.mark.slow

BROKEN = (
    sim_profile("broken", frames=10, store="broken.zarr")
    .replace("frames: 10", "frames: 0")
    .replace("dtype: uint16", "dtype: uint12")
)


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaemonProcess]:
    profiles = {"sim": sim_profile("sim", frames=10, store="sim.zarr"), "broken": BROKEN}
    with running_daemon(tmp_path_factory.mktemp("profiles"), profiles=profiles) as process:
        yield process


def refused(call: object, *args: object, **kwargs: object) -> RemoteError:
    with pytest.raises(RemoteError) as caught:
        call(*args, **kwargs)  # type: ignore[operator]
    return caught.value


def test_an_inline_profile_with_overrides_runs_as_overridden(daemon: DaemonProcess) -> None:
    text = sim_profile("inline_cam", frames=50, store="inline.zarr")
    overrides = {"acquisition.frames": 12, "storage.store": "inline/overridden.zarr", "metadata.operator": "ann"}
    with daemon.client() as client:
        run_id = client.start(yaml=text, overrides=overrides)
        run = wait_for_state(client, run_id)
    assert "inline" in run_id
    assert run["state"] == "finished"
    assert run["profile"] == "<inline>"
    assert run["store"] == str((daemon.data_root / "inline" / "overridden.zarr").resolve())
    assert assert_store_matches_pattern(Path(run["store"])) == 12


def test_validate_reports_what_a_run_would_write(daemon: DaemonProcess) -> None:
    with daemon.client() as client:
        result = client.validate("sim", overrides={"acquisition.frames": 7})
    assert result["valid"] is True
    summary = result["summary"]
    assert summary["stop"]["frames"] == 7
    (camera,) = summary["cameras"]
    assert camera["identity"] == "simulated:sim"
    assert camera["shape"] == [7, 64, 64]


def test_an_invalid_profile_is_answered_with_file_line_and_field(daemon: DaemonProcess) -> None:
    with daemon.client() as client:
        error = refused(client.start, "broken")
        assert error.code == "invalid_profile"
        path = str(daemon.profiles / "broken.yaml")
        assert re.search(rf"{re.escape(path)}:\d+: cameras\[0\]\.settings\.dtype: ", error.message), error.message
        assert re.search(rf"{re.escape(path)}:\d+: acquisition\.frames: ", error.message), error.message

        error = refused(client.start, "sim", overrides={"acquisition.frames": "many"})
        assert error.code == "invalid_profile"
        assert re.search(r"sim\.yaml:\d+: acquisition\.frames: must be an integer", error.message), error.message

        error = refused(client.start, "sim", overrides={"cameras[4].name": "x"})
        assert error.code == "invalid_profile"
        assert "cameras[4].name" in error.message

        error = refused(client.start, yaml="cameras: [\n")
        assert error.code == "invalid_profile"
        assert error.message.startswith("<inline>:")

        error = refused(client.validate, yaml="cameras: []\nstorage: {store: ../escape.zarr}\n")
        assert error.code == "invalid_profile"
        assert "storage.store" in error.message
        assert client.ping()["pong"] is True


def write_profile(daemon: DaemonProcess, name: str) -> None:
    (daemon.profiles / f"{name}.yaml").write_text(sim_profile(name, frames=5, store=f"{name}.zarr"))


def profile_names(client: Client) -> list[str]:
    return [profile["name"] for profile in client.profiles()]


def test_reload_picks_up_a_new_profile_file(daemon: DaemonProcess) -> None:
    with daemon.client() as client:
        write_profile(daemon, "added")
        assert "added" not in profile_names(client)  # profiles are read at start-up and on reload only
        assert refused(client.start, "added").code == "not_found"
        result = client.reload()
        assert "added" in result["profiles"]
        assert "broken" in result["invalid"]
        assert "added" in profile_names(client)
        run_id = client.start("added")
        assert wait_for_state(client, run_id)["state"] == "finished"

        write_profile(daemon, "by_signal")
        daemon.signal(signal.SIGHUP)
        deadline = time.monotonic() + 10
        while "by_signal" not in profile_names(client):
            assert time.monotonic() < deadline, "SIGHUP did not reload the profiles"
            time.sleep(0.05)
        assert daemon.proc.poll() is None
