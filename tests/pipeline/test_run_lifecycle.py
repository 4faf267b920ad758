"""The Run API: observer callbacks in order, metrics events, stop requests, status snapshots, a start that fails
(cleaned up: no worker, no threads left), and a second start refused."""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from structlog.contextvars import merge_contextvars
from structlog.testing import capture_logs

from daemon.errors import AcqdError, ConflictError, StorageError
from daemon.ipc.frame import Frame
from daemon.run import Run, RunObserver
from daemon.run_manager import RunState, RunStatus
from daemon.storage.worker_options import APPEND_DELAY_ENV

from .support import (
    acqd_threads,
    check_balance,
    check_pixels,
    dimensions,
    profile,
    run_to_end,
    simulated,
    wait_until,
)


class Recorder(RunObserver):
    def __init__(self) -> None:
        self.states: list[RunState] = []
        self.metrics: list[Mapping[str, Any]] = []
        self.summaries: list[Mapping[str, Any]] = []
        self.frames: list[tuple[str, int]] = []
        self.lock = threading.Lock()

    def on_state(self, status: RunStatus) -> None:
        with self.lock:
            if not self.states or self.states[-1] is not status.state:
                self.states.append(status.state)

    def on_metrics(self, run_id: str, metrics: Mapping[str, Any]) -> None:
        self.metrics.append(metrics)

    def on_summary(self, run_id: str, summary: Mapping[str, Any]) -> None:
        self.summaries.append(summary)

    def on_frame(self, run_id: str, key: str, frame: Frame) -> None:
        self.frames.append((key, frame.frame_id))
        if frame.frame_id == 3:
            raise RuntimeError("a broken preview")  # must not disturb the acquisition


def test_observer_sees_states_metrics_frames_and_one_summary(data_root: Path) -> None:
    recorder = Recorder()
    camera = simulated(key="cam", frame_period_s=0.01)
    run = Run(
        profile(data_root, [camera], acquisition={"until_stopped": True}), observer=recorder, metrics_interval_s=0.2
    )
    with capture_logs(processors=[merge_contextvars]) as logs:
        run.start()
        wait_until(lambda: len(recorder.metrics) >= 2, what="two metrics events")
        status = run.status()
        assert status.state is RunState.RUNNING
        assert status.counts["frames_delivered"] >= 1
        run.request_stop()
        assert run.wait(15.0)
    summary = run.summary
    assert summary is not None
    assert (summary["outcome"], summary["cause"]) == ("finished", "stop")
    check_balance(summary)
    assert recorder.states == [RunState.STARTING, RunState.RUNNING, RunState.STOPPING, RunState.FINISHED]
    assert recorder.summaries == [summary]
    assert recorder.frames == [("cam", i) for i in range(summary["delivered"])]
    metrics = recorder.metrics[-1]
    assert metrics["frames_in_per_s"] > 0
    assert metrics["cameras"]["sim"]["frames_read"] >= 1
    assert metrics["rss_bytes"] > 0
    assert metrics["worker_rss_bytes"] > 0
    assert set(metrics["drops"]) >= {"queue_full", "aborted"}
    logged = [e for e in logs if e["event"] == "run_metrics"]
    assert len(logged) >= 2
    assert {e.get("run_id") for e in logs if e["event"].startswith("run_")} == {run.run_id}  # bound in every thread
    assert [e["event"] for e in logs if e["event"] == "run_observer_failed"] == ["run_observer_failed"]
    assert run.status().finished_at is not None


def test_a_second_start_is_refused(data_root: Path) -> None:
    run = Run(profile(data_root, [simulated()], acquisition={"frames": 3}))
    run_to_end(run)
    with pytest.raises(ConflictError, match="already started"):
        run.start()


@pytest.mark.genicam
def test_a_camera_that_cannot_open_fails_before_anything_is_created(data_root: Path, gentl_path: Path) -> None:
    settings = {"select": {"serial_number": "NO-SUCH-DEVICE"}, "pixel_format": "Mono16", "width": 64, "height": 48}
    camera = {"name": "cam", "driver": "genicam", "settings": settings, "dimensions": dimensions(3)}
    run = Run(profile(data_root, [camera], acquisition={"frames": 3}))
    with capture_logs() as logs, pytest.raises(AcqdError, match="NO-SUCH-DEVICE"):
        run.start()
    assert run.wait(0)
    summary = run.summary
    assert summary is not None
    assert (summary["outcome"], summary["cause"], summary["delivered"]) == ("failed", "start_failed", 0)
    assert "NO-SUCH-DEVICE" in summary["errors"][0]
    assert run.worker_pid is None
    assert "frame_stream_bound" not in [e["event"] for e in logs]
    assert not (data_root / "run.zarr").exists()  # a typo in the profile leaves no store behind


def test_a_worker_that_exits_before_connecting_undoes_the_start(
    data_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(APPEND_DELAY_ENV, "not-a-number")  # the worker refuses its environment: exit 2
    run = Run(profile(data_root, [simulated()], acquisition={"frames": 3}))
    with pytest.raises(StorageError, match=r"the storage worker exited \(exit code 2\) before connecting"):
        run.start()
    summary = run.summary
    assert summary is not None
    assert (summary["outcome"], summary["worker"]["exit"]) == ("failed", "exit code 2")
    pid = run.worker_pid
    assert pid is not None
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # exited and reaped
    wait_until(lambda: not acqd_threads(), what="no thread left")


def test_an_existing_store_without_overwrite_is_refused_before_the_worker(data_root: Path) -> None:
    (data_root / "run.zarr").mkdir()
    (data_root / "run.zarr" / "zarr.json").write_text("{}")
    run = Run(profile(data_root, [simulated()], acquisition={"frames": 3}, overwrite=False))
    with pytest.raises(AcqdError, match="already exists and overwrite is false"):
        run.start()
    assert run.worker_pid is None
    assert (data_root / "run.zarr" / "zarr.json").read_text() == "{}"


def test_the_cameras_start_only_once_the_worker_cleared_the_old_store(data_root: Path) -> None:
    old = data_root / "run.zarr"
    for folder in range(100):  # big enough that clearing it takes a while
        (old / f"c{folder}").mkdir(parents=True)
        for name in range(200):
            (old / f"c{folder}" / str(name)).write_bytes(b"old")
    (old / "zarr.json").write_text("{}")
    run = Run(profile(data_root, [simulated()], acquisition={"frames": 20}, overwrite=True))
    with capture_logs() as logs:
        run.start()
        assert not (old / "c99").exists()  # start() returned: the old store was already gone
        assert run.wait(30)
    events = [e["event"] for e in logs]
    assert events.index("storage_worker_ready") < events.index("run_started")
    summary = run.summary
    assert summary is not None
    assert (summary["outcome"], summary["stored"], summary["dropped"]) == (
        "finished",
        20,
        dict.fromkeys(summary["dropped"], 0),
    )
    assert check_pixels(old) == list(range(20))
