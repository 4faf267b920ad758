"""One run per camera: a second start for a camera (or a store) in use is ``conflict``; runs on different cameras
(a simulated one and a GenICam one on the fake GenTL producer) go on at the same time and both store exactly the
reference frames."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from daemon.ipc.client import RemoteError
from tests.serve.daemon_process import (
    DaemonProcess,
    assert_store_matches_pattern,
    genicam_profile,
    running_daemon,
    sim_profile,
    wait_for_state,
)

pytestmark = [pytest.mark.slow, pytest.mark.genicam]


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory, fake_cti: Path) -> Iterator[DaemonProcess]:
    profiles = {
        "a": sim_profile("a", until_stopped=True, store="a.zarr", period_s=0.01),
        "a_again": sim_profile("a", frames=5, store="a_again.zarr"),
        "b_same_store": sim_profile("b", frames=5, store="a.zarr"),
        "b": sim_profile("b", until_stopped=True, store="b.zarr", period_s=0.01),
        "gc": genicam_profile(fake_cti, store="gc.zarr", serial="FAKE0001"),
        "gc_again": genicam_profile(fake_cti, store="gc_again.zarr", serial="FAKE0001"),
    }
    with running_daemon(tmp_path_factory.mktemp("conflicts"), profiles=profiles) as process:
        yield process


def start_refused(client: object, name: str) -> RemoteError:
    with pytest.raises(RemoteError) as caught:
        client.start(name)  # type: ignore[attr-defined]
    return caught.value


def test_a_camera_or_a_store_in_use_is_a_conflict(daemon: DaemonProcess) -> None:
    with daemon.client() as client:
        run_id = client.start("a")
        for name, what in (("a", "simulated:a"), ("a_again", "simulated:a"), ("b_same_store", "a.zarr")):
            error = start_refused(client, name)
            assert error.code == "conflict", error
            assert what in error.message
            assert run_id in error.message
        client.stop(run_id)
        assert wait_for_state(client, run_id)["state"] == "finished"
        again = client.start("a_again")  # the camera is free once its run has finished
        assert wait_for_state(client, again)["state"] == "finished"


def test_runs_on_different_cameras_go_on_at_once(daemon: DaemonProcess) -> None:
    with daemon.client() as client:
        sim_run = client.start("b")
        gc_run = client.start("gc")
        wait_for_state(client, gc_run, ("running",))
        wait_for_state(client, sim_run, ("running",))
        error = start_refused(client, "gc_again")  # the same GenICam device (producer + selector)
        assert error.code == "conflict"
        assert "FAKE0001" in error.message
        time.sleep(0.5)
        live = {run["run_id"]: run["state"] for run in client.status()["runs"]}
        assert live[sim_run] == live[gc_run] == "running"
        client.stop(gc_run)
        client.stop(sim_run)
        gc_done = wait_for_state(client, gc_run)
        sim_done = wait_for_state(client, sim_run)
    assert gc_done["state"] == "finished", gc_done
    assert sim_done["state"] == "finished", sim_done
    assert assert_store_matches_pattern(Path(gc_done["store"])) == gc_done["counts"]["frames_stored"] > 0
    assert assert_store_matches_pattern(Path(sim_done["store"])) == sim_done["counts"]["frames_stored"] > 0
    for run in (gc_done, sim_done):
        assert run["counts"]["frames_delivered"] == run["counts"]["frames_stored"] + sum(run["drops"].values())
