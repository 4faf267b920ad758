"""``acqd run`` as a user runs it: the demo profile from the repository, Ctrl-C mid-run, a broken profile."""

from __future__ import annotations

import json
import os
import pty
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from daemon.progress import CLEAR
from daemon.storage.worker_options import APPEND_DELAY_ENV

from .support import REPO, check_pixels, image, simulated

ACQD = Path(sys.executable).parent / "acqd"


def acqd_run(*args: str, cwd: Path, **env: str) -> subprocess.Popen[str]:
    environ = {k: v for k, v in os.environ.items() if k != "ACQD_DATA_ROOT"} | env
    return subprocess.Popen(
        [str(ACQD), "run", *args, "--log-format", "json"],
        cwd=cwd,
        env=environ,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def write_profile(tmp_path: Path, acquisition: dict[str, Any], store: str, **settings: Any) -> Path:
    doc = {
        "cameras": [simulated(**settings)],
        "acquisition": acquisition,
        "storage": {"store": store, "version": 3, "overwrite": False},
    }
    path = tmp_path / "profile.yaml"
    path.write_text(json.dumps(doc))
    return path


def refused_start(proc: subprocess.Popen[str]) -> str:
    """What a run that could not start printed on stderr (it must have exited 1)."""
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 1, err
    return err.strip()


def events(stdout: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]


def finished_events(proc: subprocess.Popen[str], timeout_s: float = 60.0) -> list[dict[str, Any]]:
    """The JSON log lines of a run that ended (it must have exited 0)."""
    out, err = proc.communicate(timeout=timeout_s)
    assert proc.returncode == 0, err
    return events(out)


@pytest.mark.slow
def test_the_demo_profile_runs_from_the_repository(tmp_path: Path) -> None:
    data = tmp_path / "data"
    proc = acqd_run(str(REPO / "config/profiles/demo.yaml"), "--data-root", str(data), cwd=tmp_path)
    out, err = proc.communicate(timeout=90)
    assert proc.returncode == 0, err
    assert err.strip().splitlines()[-1].startswith(f"acqd run: finished: 200 frames stored in {data / 'demo.zarr'} (")
    assert err.strip().endswith("dropped: none")
    summary = next(e for e in events(out) if e["event"] == "run_summary")
    assert (summary["stored"], summary["balanced"], summary["store_finalized"]) == (200, True, True)
    worker_events = [e for e in events(out) if e.get("component") == "daemon.storage.worker"]
    assert worker_events  # the worker's JSON lines reach the same stdout, tagged with the run id
    assert {e["run_id"] for e in worker_events if "run_id" in e} == {summary["run_id"]}
    assert check_pixels(data / "demo.zarr") == list(range(200))


@pytest.mark.slow
def test_ctrl_c_stops_gracefully_with_a_finalised_store(tmp_path: Path) -> None:
    path = write_profile(tmp_path, {"until_stopped": True}, "stopped.zarr", frame_period_s=0.005)
    data = tmp_path / "data"
    proc = acqd_run(str(path), "--data-root", str(data), cwd=tmp_path)
    store = data / "stopped.zarr"
    deadline = time.monotonic() + 30
    while not (store / "0" / "c").exists():  # the first shard of frames is on disk
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "no frames were stored in time"
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    summary = next(e for e in finished_events(proc, 30) if e["event"] == "run_summary")
    assert (summary["outcome"], summary["cause"], summary["store_finalized"]) == ("finished", "stop", True)
    assert summary["stored"] == summary["delivered"] >= 8
    assert image(store).shape[0] == summary["stored"]
    assert check_pixels(store) == list(range(summary["stored"]))


def test_an_invalid_profile_exits_2_with_its_errors(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("cameras: []\nacquisition: {frames: 0}\nstorage: {store: x.zarr}\n")
    proc = acqd_run(str(path), "--data-root", str(tmp_path / "data"), cwd=tmp_path)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 2
    assert f"{path}:1: cameras: must list at least one camera." in err
    assert not (tmp_path / "data").exists()


def test_a_run_that_cannot_start_exits_1_with_one_line(tmp_path: Path) -> None:
    data = tmp_path / "data"
    (data / "demo.zarr").mkdir(parents=True)
    (data / "demo.zarr" / "zarr.json").write_text("{}")
    path = tmp_path / "demo.yaml"
    path.write_text((REPO / "config/profiles/demo.yaml").read_text().replace("overwrite: true", "overwrite: false"))
    proc = acqd_run(str(path), "--data-root", str(data), cwd=tmp_path)
    assert refused_start(proc) == (
        f"acqd run: could not start: store {data / 'demo.zarr'} already exists and overwrite is false: "
        "choose a new store or set storage.overwrite: true. To append to it instead, add --resume RUN_ID."
    )


@pytest.mark.slow
def test_a_second_ctrl_c_aborts(tmp_path: Path) -> None:
    # the worker stores 50 frames/s; the camera fills the 32-frame queue at once: a second or more of backlog
    acquisition = {"until_stopped": True, "on_queue_full": "block", "queue_bytes": "4 MiB"}
    path = write_profile(tmp_path, acquisition, "aborted.zarr", height=256, width=256)
    data = tmp_path / "data"
    proc = acqd_run(str(path), "--data-root", str(data), cwd=tmp_path, **{APPEND_DELAY_ENV: "0.02"})
    deadline = time.monotonic() + 30
    while not (data / "aborted.zarr" / "0" / "c").exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "no frames were stored in time"
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 1, err
    summary = next(e for e in events(out) if e["event"] == "run_summary")
    assert (summary["outcome"], summary["store_finalized"], summary["balanced"]) == ("aborted", True, True)
    assert summary["dropped"]["aborted"] > 0
    assert err.strip().splitlines()[-1].startswith("acqd run: aborted: ")
    assert check_pixels(data / "aborted.zarr") == list(range(summary["stored"]))


@pytest.mark.slow
def test_a_terminal_gets_a_progress_line(tmp_path: Path) -> None:
    path = write_profile(tmp_path, {"frames": 60}, "progress.zarr", frame_period_s=0.01)
    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        [str(ACQD), "run", str(path), "--data-root", str(tmp_path / "data"), "--log-format", "json"],
        stdout=subprocess.DEVNULL,
        stderr=follower,
    )
    os.close(follower)
    shown = b""
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:  # the terminal closed: the process ended
            break
        if not chunk:
            break
        shown += chunk
    os.close(leader)
    assert proc.wait(30) == 0
    text = shown.decode()
    assert f"{CLEAR}acqd run running " in text
    assert " fps " in text
    assert " MB/s " in text
    last = text.rsplit(CLEAR, 1)[1]  # the progress line is erased before the result is printed
    assert last.startswith(f"acqd run: finished: 60 frames stored in {tmp_path / 'data' / 'progress.zarr'} (")
    assert last.endswith("dropped: none\r\n")
