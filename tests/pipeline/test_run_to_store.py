"""A simulated camera through the real worker into Zarr v2 and v3: every stored frame is the reference pattern of
its frame id (from the per-frame table), and the run's summary counts every frame exactly."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from structlog.testing import capture_logs

from daemon.ipc.frame import FrameFlags
from daemon.run import Run
from tests.storage.test_ome_metadata import validate as validate_ome

from .support import (
    HEIGHT,
    WIDTH,
    acqd_threads,
    check_balance,
    check_pixels,
    frame_table,
    image,
    profile,
    run_to_end,
    simulated,
    wait_until,
)

FRAMES = 21  # not a multiple of the chunk (4) or the shard (8): ragged ends are finalised too


@pytest.mark.parametrize("version", [2, 3])
def test_every_frame_is_stored_and_equals_its_reference(data_root: Path, version: int) -> None:
    run = Run(profile(data_root, [simulated(version=version)], acquisition={"frames": FRAMES}, version=version))
    with capture_logs() as logs:
        summary = run_to_end(run)
    assert (summary["outcome"], summary["cause"], summary["errors"]) == ("finished", "frames", [])
    assert (summary["delivered"], summary["stored"], summary["store_finalized"]) == (FRAMES, FRAMES, True)
    assert sum(summary["dropped"].values()) == 0
    check_balance(summary)
    assert summary["cameras"]["sim"]["bytes_stored"] == FRAMES * HEIGHT * WIDTH * 2
    assert summary["bytes_written"] > 0
    store = data_root / "run.zarr"
    assert check_pixels(store) == list(range(FRAMES))
    validate_ome(store, "", version)  # the frames/ table beside the levels leaves a valid OME-NGFF image
    table = frame_table(store)
    assert (table["flags"] == 0).all()
    assert (np.diff(table["host_time_ns"]) >= 0).all()
    events = [e for e in logs if e["event"] == "run_summary"]
    assert len(events) == 1
    assert events[0]["stored"] == FRAMES
    assert [e["event"] for e in logs if e["event"].startswith("run_")][:2] == ["run_starting", "run_started"]
    status = run.status()
    assert (status.state.value, status.counts["frames_stored"], status.finished_at is not None) == (
        "finished",
        FRAMES,
        True,
    )
    wait_until(lambda: not acqd_threads(), what="the run's threads to end")


def test_two_cameras_write_two_arrays(data_root: Path) -> None:
    cameras = [
        simulated("left", "sample/left", frame_period_s=0.002),
        simulated("right", "sample/right", pattern="radial_sine", frame_period_s=0.003),
    ]
    summary = run_to_end(Run(profile(data_root, cameras, acquisition={"frames": 12})))
    assert summary["outcome"] == "finished"
    check_balance(summary)
    assert {name: c["stored"] for name, c in summary["cameras"].items()} == {"left": 12, "right": 12}
    keys = {name: c["key"] for name, c in summary["cameras"].items()}
    assert keys == {"left": "sample/left", "right": "sample/right"}
    store = data_root / "run.zarr"
    for key in ("sample/left", "sample/right"):
        assert check_pixels(store, key) == list(range(12))
        assert image(store, key).shape == (12, HEIGHT, WIDTH)


def test_a_duration_stops_the_run_and_incomplete_frames_can_be_stored(data_root: Path) -> None:
    camera = simulated(frame_period_s=0.005, faults={"incomplete_every": 4})
    run = Run(profile(data_root, [camera], acquisition={"duration_s": 0.6, "incomplete": "store"}))
    summary = run_to_end(run)
    assert (summary["outcome"], summary["cause"]) == ("finished", "duration")
    check_balance(summary)
    assert 20 <= summary["stored"] == summary["delivered"]
    table = frame_table(data_root / "run.zarr")
    incomplete = [int(i) for i, f in zip(table["frame_id"], table["flags"], strict=True) if f & FrameFlags.INCOMPLETE]
    assert incomplete == [i for i in range(1, summary["stored"]) if i % 4 == 0]
    pixels = image(data_root / "run.zarr")[4]
    assert not pixels[HEIGHT // 2 :].any()  # the simulated camera zeroes the missing half
