"""After a daemon crash, ``start`` with ``resume`` appends a new run to the interrupted run's store: the old frames
stay, the gap reads as the fill value and is recorded (frame table, ``acqd.resumes``, summary, ``run_resumed``), the
new run's books balance, and a run cannot be resumed twice or when it is not interrupted."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import zarr
from ome_zarr_models import v05

from daemon.cameras.pattern import radial_sine
from daemon.ipc.client import Client, RemoteError
from daemon.run_journal import RunJournal
from daemon.storage.frame_table import PADDING, ROW_LOST
from tests.serve.daemon_process import DaemonProcess, sim_profile, spawn_daemon, wait_for_state

pytestmark = pytest.mark.slow

PROFILE = sim_profile("live", until_stopped=True, store="live.zarr", period_s=0.005)


def wait_recovered(client: Client, run_id: str, timeout_s: float = 30.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        runs = [r for r in client.status()["runs"] if r["run_id"] == run_id]
        if runs and runs[0]["finished_at"] is not None:
            return dict(runs[0])
        assert time.monotonic() < deadline, f"run {run_id} not recovered: {runs}"
        time.sleep(0.1)


def crash_mid_run(tmp_path: Path, state: Path) -> tuple[DaemonProcess, str]:
    """A daemon that ran ``live`` for a second, then was SIGKILLed; its runtime folder and the run id."""
    first = spawn_daemon(tmp_path, profiles={"live": PROFILE}, env={"STATE_DIRECTORY": str(state)})
    with first.client() as client:
        run_id = client.start("live")
        wait_for_state(client, run_id, ("running",))
        time.sleep(1.0)
    first.proc.send_signal(signal.SIGKILL)
    first.proc.wait(10)
    return first, run_id


def restart_after_crash(tmp_path: Path) -> tuple[DaemonProcess, DaemonProcess, str]:
    """:func:`crash_mid_run` (state in ``tmp_path/state``), then a second daemon on the same state and runtime
    folders: the crashed daemon, the new one and the run id."""
    state = tmp_path / "state"
    first, run_id = crash_mid_run(tmp_path, state)
    env = {"STATE_DIRECTORY": str(state), "RUNTIME_DIRECTORY": str(first.runtime)}
    return first, spawn_daemon(tmp_path, profiles={"live": PROFILE}, env=env), run_id


def refused(call: Any, code: str, match: str) -> None:
    with pytest.raises(RemoteError) as caught:
        call()
    assert caught.value.code == code, caught.value
    assert match in caught.value.message, caught.value.message


def check_resumed_store(store: Path, resume: dict[str, Any], stored: int) -> None:
    """Old rows equal their pattern, the gap is flagged and reads 0, the new run's frames follow."""
    group = zarr.open_group(str(store), mode="r")
    images = np.asarray(group["0"][:])
    ids = np.asarray(group["frames/frame_id"][:])
    flags = np.asarray(group["frames/flags"][:])
    before, at = resume["claimed_before"], resume["at_index"]
    assert resume["padding_frames"] == at - before
    assert len(images) == len(ids) == resume["store_frames"] == at + stored
    rows_before = resume["table_rows_before"]
    for row in [*range(rows_before), *range(at, len(ids))]:
        assert not flags[row] & (ROW_LOST | PADDING)
        np.testing.assert_array_equal(images[row], radial_sine(int(ids[row]), 64, 64, np.uint16), f"row {row}")
    assert (ids[rows_before:at] == -1).all()
    assert (flags[rows_before:before] == ROW_LOST).all()
    assert (flags[before:at] == PADDING).all()
    assert not images[before:at].any(), "the gap reads as the fill value"
    attributes = json.loads((store / "zarr.json").read_text())["attributes"]
    records = attributes["acqd"]["resumes"]
    assert len(records) == 1
    assert {k: records[0][k] for k in ("at_index", "claimed_before", "padding_frames")} == {
        k: resume[k] for k in ("at_index", "claimed_before", "padding_frames")
    }
    v05.Image.from_zarr(group)  # the OME metadata is still valid


@pytest.mark.timeout(60)
def test_an_interrupted_run_is_resumed_into_its_store_with_the_gap_recorded(tmp_path: Path) -> None:
    first, second, run_id = restart_after_crash(tmp_path)
    try:
        with second.client(timeout_s=10.0) as client:
            interrupted = wait_recovered(client, run_id)
            assert interrupted["state"] == "interrupted"
            refused(lambda: client.resume("no-such-run"), "not_found", "no run with id 'no-such-run'")
            other = PROFILE.replace("chunk_size_px: 16", "chunk_size_px: 8")
            refused(lambda: client.resume(run_id, yaml=other), "invalid_profile", "chunk_grid is")
            moved = PROFILE.replace("live.zarr", "elsewhere.zarr")
            refused(lambda: client.resume(run_id, yaml=moved), "invalid_profile", "the profile's store is")

            new_id = client.resume(run_id)
            assert new_id != run_id
            wait_for_state(client, new_id, ("running",))
            refused(lambda: client.resume(run_id), "conflict", f"already resumed by run {new_id!r}")
            time.sleep(0.5)
            client.stop(new_id)
            status = wait_for_state(client, new_id)
            assert status["state"] == "finished", status
            assert status["resumes"] == run_id
            refused(lambda: client.resume(new_id), "conflict", "only an interrupted run can be resumed")
            listed = {r["run_id"]: r for r in client.status()["runs"]}
            assert listed[run_id]["resumed_by"] == new_id
        summary = next(e for e in second.logs() if e.get("event") == "run_summary" and e.get("run_id") == new_id)
        assert summary["balanced"]
        assert summary["delivered"] == summary["stored"] + sum(summary["dropped"].values()) > 0
        assert summary["resumes"] == run_id
        resume = summary["resume"][""]
        assert resume["claimed_before"] == interrupted["counts"]["frames_claimed"] > 0
        assert resume["at_index"] % 16 == 0  # the next chunk row along t
        check_resumed_store(second.data_root / "live.zarr", resume, summary["stored"])
        event = next(e for e in second.logs() if e.get("event") == "run_resumed")
        assert event["run_id"] == new_id
        assert event["resumes"] == run_id
        assert event["arrays"][""]["at_index"] == resume["at_index"]
        journal = RunJournal(tmp_path / "state")
        assert journal.read(run_id).resumed_by == new_id  # type: ignore[union-attr]
        assert journal.read(new_id).resumes == run_id  # type: ignore[union-attr]
    finally:
        second.close()
        first.close()
