"""While a stream runs, the store on disk opens and its shape claims only frames that are already written."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
import zarr

from daemon.storage import ZarrStream
from tests.storage.support import dims, random_frames, settings, wait_for_stored


@pytest.mark.parametrize("version", [2, 3])
def test_stored_frames_are_readable_before_close(tmp_path: Path, version: int) -> None:
    path = tmp_path / "s.zarr"
    spec = [("t", "time", 0, 1), ("y", "space", 8, 4), ("x", "space", 8, 8)]
    frames = random_frames(5, 8, 8, "uint16")
    with ZarrStream(settings(path, dims(spec), version=version)) as stream:
        stream.append(frames)
        wait_for_stored(stream, 5)
        array = zarr.open_array(str(path), path="0", mode="r")
        assert array.shape == (5, 8, 8)
        np.testing.assert_array_equal(array[:], frames)


def test_a_shard_row_is_claimed_only_once_complete(tmp_path: Path) -> None:
    path = tmp_path / "s.zarr"
    spec = [("t", "time", 0, 2), ("y", "space", 8, 4), ("x", "space", 8, 8)]
    frames = random_frames(7, 8, 8, "uint16")
    with ZarrStream(settings(path, dims(spec, [2, 2, 1]))) as stream:  # rows of 4 frames
        stream.append(frames)
        wait_for_stored(stream, 4)
        time.sleep(0.3)  # give a wrong implementation time to claim more
        assert stream.frames_stored() == 4
        assert json.loads((path / "0" / "zarr.json").read_text())["shape"][0] == 4
        np.testing.assert_array_equal(zarr.open_array(str(path), path="0", mode="r")[:], frames[:4])
    assert stream.frames_stored() == 7
    assert zarr.open_array(str(path), path="0", mode="r").shape == (7, 8, 8)


def test_a_new_store_claims_no_frames(tmp_path: Path) -> None:
    path = tmp_path / "s.zarr"
    spec = [("c", "channel", 3, 1), ("y", "space", 8, 4), ("x", "space", 8, 8)]  # a fixed first dimension
    with ZarrStream(settings(path, dims(spec))) as stream:
        assert zarr.open_array(str(path), path="0", mode="r").shape == (0, 8, 8)
        stream.append(random_frames(1, 8, 8, "uint16"))
    assert zarr.open_array(str(path), path="0", mode="r").shape == (3, 8, 8)
