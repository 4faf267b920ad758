"""Write failures: a StorageError naming the path, sticky afterwards, and what was written before stays readable."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import zarr

from daemon.errors import StorageError, StreamClosedError
from daemon.storage import ZarrStream
from tests.storage import writer_process
from tests.storage.support import dims, random_frames, read, settings
from tests.waiting import wait_until

REPO = Path(__file__).resolve().parents[2]


def run_writer(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.run(
        [sys.executable, "-m", "tests.storage.writer_process", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def wait_until_failed(stream: ZarrStream) -> None:
    wait_until(lambda: not stream.is_active())


def test_disk_full_raises_storage_error_then_refuses_and_keeps_what_was_stored(tmp_path: Path) -> None:
    store = tmp_path / "full.zarr"
    result = run_writer("disk-full", str(store))
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["first_error"].startswith("StorageError:")
    assert str(store) in report["first_error"]
    assert "File too large" in report["first_error"]
    assert report["next_append"].startswith("StreamClosedError:")
    assert report["close"].startswith("StorageError:")
    assert report["close_again"] == "ok"
    # The compressible frames went into shards under the size limit: they must be readable and claimed.
    data = read(store, "0")
    assert data.shape[0] >= writer_process.COMPRESSIBLE_FRAMES
    assert data.shape[0] >= report["frames_stored"]
    for k in range(data.shape[0]):
        np.testing.assert_array_equal(data[k], writer_process.frame(k, noisy=k >= writer_process.COMPRESSIBLE_FRAMES))
    assert not list(store.rglob("*.partial"))


def test_a_file_where_a_chunk_folder_should_go_fails_with_its_path(tmp_path: Path) -> None:
    path = tmp_path / "s.zarr"
    spec = [("t", "time", 0, 1), ("y", "space", 8, 8), ("x", "space", 8, 8)]
    frames = random_frames(3, 8, 8, "uint16")
    stream = ZarrStream(settings(path, dims(spec)))
    stream.append(frames[0])
    wait_until(lambda: (path / "0" / "c" / "0" / "0" / "0").exists())
    (path / "0" / "c" / "1").write_bytes(b"in the way")  # where chunk t=1's folder goes
    stream.append(frames[1])
    wait_until_failed(stream)
    with pytest.raises(StorageError, match=str(path / "0" / "c" / "1")) as first:
        stream.append(frames[2])
    assert not isinstance(first.value, StreamClosedError)
    with pytest.raises(StreamClosedError, match="failed earlier"):
        stream.append(frames[2])
    with pytest.raises(StorageError, match=str(path / "0" / "c" / "1")):
        stream.close()
    stream.close()  # idempotent: reported once
    assert stream.frames_stored() == 1
    array = zarr.open_array(str(path), path="0", mode="r")
    assert array.shape == (1, 8, 8)
    np.testing.assert_array_equal(array[:], frames[:1])


def test_a_failure_found_at_close_is_raised_by_close(tmp_path: Path) -> None:
    path = tmp_path / "s.zarr"
    spec = [("t", "time", 0, 4), ("y", "space", 8, 8), ("x", "space", 8, 8)]
    stream = ZarrStream(settings(path, dims(spec)))
    stream.append(random_frames(2, 8, 8, "uint16"))  # a ragged chunk, written only by close
    (path / "0" / "c").write_bytes(b"in the way")
    with pytest.raises(StorageError, match=str(path / "0" / "c")):
        stream.close()
    assert not stream.is_active()
    assert zarr.open_array(str(path), path="0", mode="r").shape == (0, 8, 8)
