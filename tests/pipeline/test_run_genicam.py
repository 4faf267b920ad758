"""The fake GenTL producer through harvesters -> the worker -> the store: pixels equal the reference pattern, and
producer faults (incomplete buffers) are counted exactly. ``GENICAM_GENTL64_PATH`` names a folder holding only the
fake producer, as a deployment would."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from structlog.testing import capture_logs

from daemon.run import Run

from .support import check_balance, check_pixels, dimensions, drops, frame_table, profile, run_to_end

pytestmark = pytest.mark.genicam

HEIGHT, WIDTH = 40, 56


def fake_camera(**settings: Any) -> dict[str, Any]:
    values = {
        "producers": [],  # found through GENICAM_GENTL64_PATH
        "select": {"serial_number": "FAKE0001"},
        "width": WIDTH,
        "height": HEIGHT,
        "pixel_format": "Mono16",
        "frame_rate_hz": 200.0,
        "exposure_time_us": 10.0,
        **settings,
    }
    return {"name": "cam", "driver": "genicam", "settings": values, "dimensions": dimensions(3, HEIGHT, WIDTH)}


def test_frames_from_the_fake_producer_are_stored_exactly(data_root: Path, gentl_path: Path) -> None:
    summary = run_to_end(Run(profile(data_root, [fake_camera()], acquisition={"frames": 24})))
    assert summary["outcome"] == "finished", summary["errors"]
    check_balance(summary)
    assert summary["stored"] == 24
    ids = check_pixels(data_root / "run.zarr")
    assert ids == sorted(ids)
    assert summary["delivered"] == ids[-1] + 1  # gaps, if the producer dropped any, are counted
    assert (frame_table(data_root / "run.zarr")["device_timestamp_ns"] > 0).all()


def test_producer_faults_are_counted_exactly(data_root: Path, gentl_path: Path) -> None:
    camera = fake_camera(pixel_format="Mono8", nodes={"FaultIncompleteEvery": 3})  # Mono8: a uint8 array
    summary = run_to_end(Run(profile(data_root, [camera], acquisition={"frames": 18})))
    assert summary["outcome"] == "finished", summary["errors"]
    check_balance(summary)
    assert drops(summary).get("camera_gap", 0) == 0, "the producer dropped frames: the ids below would shift"
    incomplete = [i for i in range(18) if (i + 1) % 3 == 0]  # the producer cuts frames with (id + 1) % 3 == 0
    assert drops(summary) == {"incomplete": len(incomplete)}
    assert check_pixels(data_root / "run.zarr", dtype=np.uint8) == [i for i in range(18) if i not in incomplete]


def test_frames_the_producer_wrote_into_lent_slots_are_stored_intact(data_root: Path, gentl_path: Path) -> None:
    # each slot goes back to the producer only once the worker has consumed its frame: a slot written again too
    # early would store another frame's pixels under this frame's id, which check_pixels would see
    camera = fake_camera(num_buffers=4, frame_rate_hz=400.0)
    with capture_logs() as logs:
        summary = run_to_end(Run(profile(data_root, [camera], acquisition={"frames": 120})))
    assert summary["outcome"] == "finished", summary["errors"]
    check_balance(summary)
    ids = check_pixels(data_root / "run.zarr")
    assert len(ids) == summary["stored"] == 120
    [stopped] = [entry for entry in logs if entry["event"] == "camera_stopped"]
    assert stopped["lent_frames"] + stopped["copied_frames"] == summary["delivered"]
    assert stopped["lent_frames"] >= summary["delivered"] // 2, stopped  # the first four are harvesters' buffers
