"""``acqd run`` and a store another run wrote or is writing: ``--resume`` appends to a killed run's store (the old
frames stay, the gap is recorded), and a store whose worker is still writing is refused, never cleared."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import pytest

from .support import HEIGHT, WIDTH, check_pixels, check_resumed_store
from .test_run_cli import acqd_run, events, finished_events, refused_start, write_profile

pytestmark = pytest.mark.slow


def start_live_run(tmp_path: Path, name: str) -> tuple[subprocess.Popen[str], Path, Path]:
    """``acqd run`` of a camera that runs until stopped into ``data/NAME``, once its first shard is on disk: the
    process, the store and the profile."""
    live = write_profile(tmp_path, {"until_stopped": True}, name, frame_period_s=0.005)
    store = tmp_path / "data" / name
    proc = acqd_run(str(live), "--data-root", str(tmp_path / "data"), cwd=tmp_path)
    deadline = time.monotonic() + 30
    while not (store / "0" / "c").exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "no frames were stored in time"
        time.sleep(0.05)
    return proc, store, live


@pytest.mark.timeout(90)
def test_a_killed_run_is_resumed_into_its_store(tmp_path: Path) -> None:
    data = tmp_path / "data"
    first, store, live = start_live_run(tmp_path, "resumed.zarr")
    time.sleep(0.3)
    first.send_signal(signal.SIGKILL)
    out, _ = first.communicate(timeout=60)  # EOF once its worker, which shares stdout, closed the store and left
    run_id = next(e["run_id"] for e in events(out) if e["event"] == "run_started")

    refused = refused_start(acqd_run(str(live), "--data-root", str(data), cwd=tmp_path))
    assert refused.endswith("To append to it instead, add --resume RUN_ID."), refused

    counted = tmp_path / "counted"
    counted.mkdir()
    again = write_profile(counted, {"frames": 20}, "resumed.zarr", frame_period_s=0.005)
    second = acqd_run(str(again), "--data-root", str(data), "--resume", run_id, cwd=tmp_path)
    summary = next(e for e in finished_events(second) if e["event"] == "run_summary")
    assert (summary["resumes"], summary["stored"], summary["balanced"]) == (run_id, 20, True)
    resume = summary["resume"][""]
    assert resume["claimed_before"] > 0
    assert resume["interrupted_at"] is None  # a foreground run keeps no heartbeat
    check_resumed_store(store, resume, 20, (HEIGHT, WIDTH))
    record = json.loads((store / "zarr.json").read_text())["attributes"]["acqd"]["resumes"][0]
    assert (record["resumes"], record["run_id"]) == (run_id, summary["run_id"])


def test_resume_needs_a_store_to_append_to(tmp_path: Path) -> None:
    path = write_profile(tmp_path, {"frames": 5}, "absent.zarr")
    proc = acqd_run(str(path), "--data-root", str(tmp_path / "data"), "--resume", "some-run", cwd=tmp_path)
    err = refused_start(proc)
    assert err.startswith("acqd run: could not start: "), err
    assert "absent.zarr" in err
    assert not (tmp_path / "data" / "absent.zarr").exists()


@pytest.mark.timeout(90)
def test_a_store_being_written_is_refused_even_with_overwrite(tmp_path: Path) -> None:
    first, store, _ = start_live_run(tmp_path, "busy.zarr")

    other = tmp_path / "other"
    other.mkdir()
    clobber = write_profile(other, {"frames": 5}, "busy.zarr")
    clobber.write_text(clobber.read_text().replace('"overwrite": false', '"overwrite": true'))
    second = acqd_run(str(clobber), "--data-root", str(tmp_path / "data"), cwd=tmp_path)
    assert refused_start(second) == (
        f"acqd run: could not start: store {store} is being written by another acqd process (a run's storage "
        "worker): wait until that run ends, or choose another store. A worker whose run died closes its store "
        "within seconds."
    )

    first.send_signal(signal.SIGINT)
    summary = next(e for e in finished_events(first, 30) if e["event"] == "run_summary")
    assert summary["stored"] == summary["delivered"] > 0
    assert check_pixels(store) == list(range(summary["stored"]))  # nothing of the live run was cleared


def test_an_empty_run_id_to_resume_is_refused_naming_what_it_takes(tmp_path: Path) -> None:
    path = write_profile(tmp_path, {"frames": 5}, "absent.zarr")
    proc = acqd_run(str(path), "--data-root", str(tmp_path / "data"), "--resume", "", cwd=tmp_path)
    assert refused_start(proc) == (
        "acqd run: --resume: resume.resumes must be a run id of 1..255 characters. Got '' instead."
    )
    assert not (tmp_path / "data").exists()
