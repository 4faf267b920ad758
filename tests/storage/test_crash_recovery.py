"""A writer killed with SIGKILL leaves a store zarr opens, whose metadata claims only frames that are on disk."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import zarr

from tests.storage import writer_process
from tests.storage.killed_writer import kill_when_stored

REPO = Path(__file__).resolve().parents[2]


def kill_writer_after(store: Path, version: int, min_stored: int, timeout: float = 60, mode: str = "forever") -> int:
    """Run a ``forever`` writer until it reports ``min_stored`` stored frames, SIGKILL it; the last report."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.storage.writer_process", mode, str(store), str(version)],
        cwd=REPO,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    return kill_when_stored(proc, min_stored, time.monotonic() + timeout)


@pytest.mark.slow
@pytest.mark.parametrize("version", [2, 3])
def test_after_sigkill_every_claimed_frame_is_correct(tmp_path: Path, version: int) -> None:
    store = tmp_path / "crash.zarr"
    acknowledged = kill_writer_after(store, version, min_stored=600)
    array = zarr.open_array(str(store), path="0", mode="r")
    per_outer = 2 * 3  # c x z
    claimed = array.shape[0] * per_outer
    assert claimed >= acknowledged > 0  # frames reported stored survive the crash
    data = np.asarray(array[:]).reshape(-1, writer_process.HEIGHT, writer_process.WIDTH)
    for k in range(claimed):
        np.testing.assert_array_equal(data[k], writer_process.frame(k), err_msg=f"frame {k}")
