"""A resume whose run fails to start stored nothing, so the interrupted run can be resumed again (the daemon's run
host in process, a real journal, real runs and stores; the start failure is injected)."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import time
from pathlib import Path

import numpy as np
import zarr
from pytest_mock import MockerFixture

from daemon.config import RunsConfig, S3Defaults
from daemon.errors import CameraError
from daemon.manager import RunHost
from daemon.profile_catalog import ProfileCatalog, ProfileSource
from daemon.run import Run
from daemon.run_journal import JournalEntry, RunJournal
from daemon.run_manager import RunState, RunStatus
from tests.serve.daemon_process import sim_profile

FIRST_FRAMES, SECOND_FRAMES = 20, 10


def dead_pid() -> int:
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


def wait_for_end(host: RunHost, run_id: str, timeout_s: float = 30.0) -> RunStatus:
    deadline = time.monotonic() + timeout_s
    while True:
        status = next(s for s in host.runs() if s.run_id == run_id)
        if status.state.terminal and status.finished_at is not None:
            return status
        assert time.monotonic() < deadline, f"run {run_id} did not end: {status}"
        time.sleep(0.05)


def test_a_resume_that_failed_to_start_can_be_tried_again(tmp_path: Path, mocker: MockerFixture) -> None:
    data_root, profiles = tmp_path / "data", tmp_path / "profiles"
    data_root.mkdir()
    profiles.mkdir()
    (profiles / "live.yaml").write_text(sim_profile("live", frames=FIRST_FRAMES, store="live.zarr"))
    runs = RunsConfig()
    catalog = ProfileCatalog(profiles, data_root, S3Defaults(), runs)
    catalog.reload()
    journal = RunJournal(tmp_path / "state")

    # The interrupted run: it stored its frames, and its entry still says running, by a daemon that is gone.
    profile = catalog.load(ProfileSource("live", None), {})
    first = Run(profile)
    first.start()
    assert first.wait(30)
    entry = JournalEntry.for_run(first.run_id, profile, source=("live", None))
    journal.begin(dataclasses.replace(entry, daemon_pid=dead_pid()))
    (profiles / "live.yaml").write_text(sim_profile("live", frames=SECOND_FRAMES, store="live.zarr"))
    catalog.reload()

    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700)
    host = RunHost(catalog, runs, journal=journal, runtime_dir=runtime)
    assert host.recover_interrupted() == [first.run_id]
    assert host.wait_recovered(30)

    real_start = Run._start_cameras
    calls: list[str] = []

    def start_fails_once(run: Run) -> None:
        calls.append(run.run_id)
        if len(calls) == 1:
            raise CameraError("simulated: the camera refused to start")
        real_start(run)

    mocker.patch.object(Run, "_start_cameras", start_fails_once)
    failed_id = host.resume(first.run_id, None, {})
    failed = wait_for_end(host, failed_id)
    assert failed.state is RunState.FAILED
    assert "the camera refused to start" in failed.errors[0]

    second_id = host.resume(first.run_id, None, {})  # before: "already resumed by run <failed_id>"
    second = wait_for_end(host, second_id)
    assert second.state is RunState.FINISHED, second.errors
    assert calls == [failed_id, second_id]
    host.wait_all(10)
    recorded = journal.read(first.run_id)
    assert recorded is not None
    assert recorded.resumed_by == second_id
    interrupted = next(s for s in host.runs() if s.run_id == first.run_id)
    assert interrupted.state.value == "interrupted"

    group = zarr.open_group(str(data_root / "live.zarr"), mode="r")
    images = np.asarray(group["0"][:])
    assert len(images) == 32 + SECOND_FRAMES  # the first run's 20 frames, padded to the chunk row of 16, then 10
    assert images[FIRST_FRAMES:32].max() == 0
    assert images[32:].any()
    ids = np.asarray(group["frames/frame_id"][:])
    assert list(ids[:FIRST_FRAMES]) == list(range(FIRST_FRAMES))
    assert (ids[FIRST_FRAMES:32] == -1).all()
    assert list(ids[32:]) == list(range(SECOND_FRAMES))
    records = json.loads((data_root / "live.zarr" / "zarr.json").read_text())["attributes"]["acqd"]["resumes"]
    assert [r["run_id"] for r in records] == [failed_id, second_id]  # the attempt that stored nothing is history
    assert {r["at_index"] for r in records} == {32}
