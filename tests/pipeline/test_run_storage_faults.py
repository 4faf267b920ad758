"""Storage that cannot keep up, a worker that dies, and an abort: every frame is still accounted for exactly, the
run's process is unharmed, and the store opens with zarr-python holding exactly what the run counts stored."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from daemon.cameras.pattern import radial_sine
from daemon.run import Run
from daemon.storage.worker_options import APPEND_DELAY_ENV

from .support import (
    acqd_threads,
    check_balance,
    check_pixels,
    drops,
    frame_table,
    image,
    profile,
    run_to_end,
    simulated,
    wait_until,
)


def big_camera(**settings: object) -> dict[str, object]:
    """256 x 256 uint16: 128 KiB frames, so a 1 MiB queue holds 8."""
    return simulated(height=256, width=256, **settings)


@pytest.mark.slow
def test_a_slow_worker_makes_the_queue_drop_frames_counted(data_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(APPEND_DELAY_ENV, "0.01")
    acquisition = {"frames": 150, "on_queue_full": "drop", "queue_bytes": "1 MiB"}
    run = Run(profile(data_root, [big_camera(frame_period_s=0.001)], acquisition=acquisition))
    summary = run_to_end(run)
    assert summary["outcome"] == "finished"  # dropped frames are accounted for: still a success
    check_balance(summary)
    assert summary["delivered"] == 150
    assert set(drops(summary)) == {"queue_full"}
    assert drops(summary)["queue_full"] == 150 - summary["stored"] > 0
    ids = check_pixels(data_root / "run.zarr")
    assert len(ids) == summary["stored"]
    assert ids == sorted(ids)  # frames are stored in acquisition order, with the dropped ones missing


@pytest.mark.slow
def test_a_killed_worker_fails_the_run_with_exact_books(data_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(APPEND_DELAY_ENV, "0.002")
    camera = simulated(frame_period_s=0.002)
    run = Run(profile(data_root, [camera], acquisition={"until_stopped": True, "on_queue_full": "drop"}))
    run.start()
    pid = run.worker_pid
    assert pid is not None
    wait_until(lambda: run.status().counts["frames_stored"] >= 40, what="40 frames stored")
    with capture_logs() as logs:
        os.kill(pid, signal.SIGKILL)
        assert run.wait(15.0)
    summary = run.summary
    assert summary is not None
    assert (summary["outcome"], summary["cause"], summary["store_finalized"]) == ("failed", "worker_lost", False)
    assert "killed by SIGKILL" in summary["errors"][0]
    assert summary["worker"]["exit"] == "killed by SIGKILL"
    check_balance(summary)
    lost = drops(summary)
    assert set(lost) <= {"worker_lost", "queue_full"}
    assert lost["worker_lost"] >= 1
    assert summary["stored"] >= 40
    assert next(e for e in logs if e["event"] == "run_summary")["outcome"] == "failed"
    # the store opens; it holds at least every frame counted stored, each the reference of its table row
    store = data_root / "run.zarr"
    rows = len(frame_table(store)["frame_id"])
    assert image(store).shape[0] >= summary["stored"]
    assert rows <= image(store).shape[0]
    ids = [int(i) for i in frame_table(store)["frame_id"]]
    assert ids == sorted(ids)
    pixels = image(store)[:rows]
    for index, frame_id in enumerate(ids):
        assert (pixels[index] == radial_sine(frame_id, 48, 64)).all()
    wait_until(lambda: not acqd_threads(), what="the run's threads to end")  # the parent is unharmed


@pytest.mark.slow
def test_abort_discards_the_queue_counted_and_leaves_a_readable_store(
    data_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Appends slow enough (50 ms each) that the worker takes at most a frame or two between the check of the
    # queue and the abort: most of the queued frames must be discarded and counted.
    monkeypatch.setenv(APPEND_DELAY_ENV, "0.05")
    acquisition = {"until_stopped": True, "on_queue_full": "block", "queue_bytes": "1 MiB"}
    run = Run(profile(data_root, [big_camera()], acquisition=acquisition))
    run.start()

    def queue_stays_full() -> bool:
        # Full twice, a quarter second apart: the worker's window is spent and the camera keeps the queue full.
        # Once alone could be the start-up burst, which the sender ships the moment the first credit lands.
        if run.status().counts.get("queue_frames", 0) < 6:
            return False
        time.sleep(0.25)
        return run.status().counts.get("queue_frames", 0) >= 6

    wait_until(queue_stays_full, what="a full queue")
    run.request_abort()
    assert run.wait(20.0)
    summary = run.summary
    assert summary is not None
    assert (summary["outcome"], summary["cause"], summary["errors"]) == ("aborted", "abort", [])
    assert summary["store_finalized"] is True
    check_balance(summary)
    assert set(drops(summary)) == {"aborted"}
    assert drops(summary)["aborted"] >= 4
    ids = check_pixels(data_root / "run.zarr")
    # The frames stored are the camera's first frames, in order, plus possibly the one frame a blocked reader had
    # in hand when the abort emptied the queue (a later id): every other queued frame was discarded and counted.
    assert len(ids) == summary["stored"]
    assert ids == sorted(set(ids))
    assert ids[:-1] == list(range(len(ids) - 1))
