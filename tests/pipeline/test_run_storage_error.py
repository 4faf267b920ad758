"""A storage failure in the worker (a disk that refuses to grow a file: RLIMIT_FSIZE, inherited by the worker):
the run fails, the frames the worker could not store are counted ``storage_error``, the books balance, and the
store still opens with what was finalised."""

from __future__ import annotations

import resource
from pathlib import Path

from daemon.run import Run

from .support import check_balance, drops, image, profile, simulated

LIMIT = 256 * 1024  # a shard of 8 frames of 256 x 128 uint16 is 512 KiB: the first one cannot be written


def test_a_storage_error_fails_the_run_with_every_frame_accounted(data_root: Path) -> None:
    camera = simulated(height=256, width=256, frame_period_s=0.002)
    run = Run(profile(data_root, [camera], acquisition={"frames": 40, "on_queue_full": "drop"}))
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (LIMIT, hard))  # the worker spawned in start() inherits it
    try:
        run.start()
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    assert run.wait(30)
    summary = run.summary
    assert summary is not None
    assert (summary["outcome"], summary["store_finalized"]) == ("failed", False)
    assert summary["errors"][0].startswith("storage failed: ")
    check_balance(summary)
    lost = drops(summary)
    assert lost.get("storage_error", 0) >= 1
    assert set(lost) <= {"storage_error", "queue_full", "worker_lost"}
    assert summary["stored"] == 0
    assert image(data_root / "run.zarr").shape[0] == 0  # the store opens; it claims nothing it does not hold
