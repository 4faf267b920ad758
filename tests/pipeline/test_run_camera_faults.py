"""Camera faults end counted exactly: frame-id gaps (camera_gap), incomplete frames dropped by policy, and a lost
camera, which fails the run while everything read before it is stored and readable."""

from __future__ import annotations

from pathlib import Path

from daemon.run import Run

from .support import check_balance, check_pixels, drops, frame_table, profile, run_to_end, simulated

FRAMES = 30


def test_gaps_and_incomplete_frames_are_counted_exactly(data_root: Path) -> None:
    camera = simulated(faults={"drop_every": 5, "incomplete_every": 7})
    summary = run_to_end(Run(profile(data_root, [camera], acquisition={"frames": FRAMES})))
    assert summary["outcome"] == "finished"
    check_balance(summary)
    # the camera skips one id in 5 (4, 9, 14, ...): FRAMES ids read, the last one read is 30 * 5 / 4 - 1 = 36
    read_ids = [i for i in range(100) if i % 5 != 4][:FRAMES]
    gaps = read_ids[-1] + 1 - FRAMES
    incomplete = [i for i in read_ids if i > 0 and i % 7 == 0]
    assert drops(summary) == {"camera_gap": gaps, "incomplete": len(incomplete)}
    assert summary["delivered"] == FRAMES + gaps
    assert summary["stored"] == FRAMES - len(incomplete)
    stored_ids = check_pixels(data_root / "run.zarr")
    assert stored_ids == [i for i in read_ids if i not in incomplete]
    flags = frame_table(data_root / "run.zarr")["flags"]
    after_gap = [i for i, f in zip(stored_ids, flags, strict=True) if f & 2]
    assert after_gap == [i for i in stored_ids if i % 5 == 0 and i > 0]


def test_a_lost_camera_fails_the_run_and_keeps_what_was_read(data_root: Path) -> None:
    camera = simulated(faults={"disconnect_at_frame": 13})
    summary = run_to_end(Run(profile(data_root, [camera], acquisition={"until_stopped": True})))
    assert (summary["outcome"], summary["cause"]) == ("failed", "camera_failed")
    assert len(summary["errors"]) == 1
    assert "camera 'sim'" in summary["errors"][0]
    assert "disconnected at frame 13" in summary["errors"][0]
    check_balance(summary)
    assert (summary["delivered"], summary["stored"], summary["store_finalized"]) == (13, 13, True)
    assert check_pixels(data_root / "run.zarr") == list(range(13))
