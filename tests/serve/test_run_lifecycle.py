"""Runs through ``acqd serve``: start by name, run to the frame count, stop, abort; the stores hold exactly the
reference frames; ``status`` and the events socket report every step."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from daemon.ipc.client import RemoteError
from tests.serve.daemon_process import (
    TERMINAL,
    DaemonProcess,
    assert_store_matches_pattern,
    collect,
    read_store,
    running_daemon,
    sim_profile,
    wait_for_state,
)

pytestmark = pytest.mark.slow

PROFILES = {
    "sim": sim_profile("sim", frames=30, store="sim.zarr"),
    "live": sim_profile("live", until_stopped=True, store="live.zarr", period_s=0.01),
}


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaemonProcess]:
    with running_daemon(tmp_path_factory.mktemp("lifecycle"), profiles=PROFILES) as process:
        yield process


def test_a_run_by_name_stores_exactly_the_reference_frames(daemon: DaemonProcess) -> None:
    with daemon.client() as client:
        run_id = client.start("sim")
        run = wait_for_state(client, run_id)
    assert run["state"] == "finished", run
    assert run["counts"]["frames_delivered"] == 30
    assert run["counts"]["frames_stored"] == 30
    assert run["counts"]["frames_in_flight"] == 0
    assert sum(run["drops"].values()) == 0
    assert run["store"] == str((daemon.data_root / "sim.zarr").resolve())
    assert assert_store_matches_pattern(Path(run["store"])) == 30


def test_stop_finalises_the_store_and_abort_leaves_it_readable(daemon: DaemonProcess) -> None:
    with daemon.client() as client:
        run_id = client.start("live")
        wait_for_state(client, run_id, ("running",))
        time.sleep(0.3)
        stopping = client.stop(run_id)
        assert stopping["run_id"] == run_id
        assert stopping["state"] in ("running", "stopping")
        stopped = wait_for_state(client, run_id)
        assert stopped["state"] == "finished"
        stored = assert_store_matches_pattern(Path(stopped["store"]))
        assert stored == stopped["counts"]["frames_stored"] > 0

        run_id = client.start("live")
        wait_for_state(client, run_id, ("running",))
        time.sleep(0.3)
        client.abort(run_id)
        aborted = wait_for_state(client, run_id)
    assert aborted["state"] == "aborted"
    counts = aborted["counts"]
    assert counts["frames_delivered"] == counts["frames_stored"] + sum(aborted["drops"].values())
    assert assert_store_matches_pattern(Path(aborted["store"])) == counts["frames_stored"]


def test_events_report_states_metrics_summary_and_previews(daemon: DaemonProcess) -> None:
    events = daemon.subscribe()
    try:
        with daemon.client() as client:
            run_id = client.start("live")
            wait_for_state(client, run_id, ("running",))
            time.sleep(0.8)  # a few metrics intervals (0.2 s) and previews (5 Hz)
            client.stop(run_id)
            seen = collect(
                events, lambda e: e.topic == "state" and e.data["run_id"] == run_id and e.data["state"] in TERMINAL
            )
    finally:
        events.close()
    mine = [event for event in seen if event.data.get("run_id") == run_id]
    states = [event.data["state"] for event in mine if event.topic == "state"]
    assert states == ["starting", "running", "stopping", "finished"]
    metrics = [event.data for event in mine if event.topic == "metrics"]
    assert metrics
    assert all("frames_in_per_s" in fields for fields in metrics)
    (summary,) = [event.data for event in mine if event.topic == "summary"]
    assert summary["outcome"] == "finished"
    assert summary["delivered"] == summary["stored"] + sum(summary["dropped"].values())
    previews = [event for event in mine if event.topic == "preview"]
    assert 1 <= len(previews) <= 10  # rate-limited to 5 per second
    preview = previews[-1]
    assert preview.data["key"] == ""
    images, frame_ids = read_store(Path(summary["store"]))
    stored = dict(zip(frame_ids.tolist(), images, strict=True))
    frame_id = preview.data["frame_id"]
    assert frame_id in stored  # a simulated camera is never dropped (queue mode block): every frame read is stored
    step = preview.data["step"]
    np.testing.assert_array_equal(preview.preview_array(), stored[frame_id][::step, ::step])
    assert [event.seq for event in seen] == sorted(event.seq for event in seen)


def test_status_lists_live_and_finished_runs_and_unknown_ids_are_not_found(daemon: DaemonProcess) -> None:
    with daemon.client() as client:
        run_id = client.start("live")
        everything = client.status()
        ids = [run["run_id"] for run in everything["runs"]]
        assert run_id in ids
        assert everything["daemon"]["pid"] == daemon.proc.pid
        assert any(run["state"] in TERMINAL for run in everything["runs"])  # runs of the tests before
        client.stop(run_id)
        finished = wait_for_state(client, run_id)
        assert client.stop(run_id)["state"] == finished["state"]  # stopping a finished run changes nothing
        for call in (client.stop, client.abort, client.status):
            with pytest.raises(RemoteError) as caught:
                call("no-such-run")
            assert caught.value.code == "not_found"
        with pytest.raises(RemoteError) as caught:
            client.start("no-such-profile")
        assert caught.value.code == "not_found"
        assert "sim" in caught.value.message
