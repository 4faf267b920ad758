"""Helpers of the pipeline tests: profiles as JSON (valid YAML), running a Run to its end, reading the store back.

Every test runs the real pipeline: cameras in the test process, the real storage worker child process, real
ZeroMQ sockets, real files (or the SeaweedFS server). zarr-python is the oracle for what was written; importing it
here does not touch the engine, which runs in the worker process.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import zarr
from ome_zarr_models import v05

from daemon.cameras.pattern import radial_sine
from daemon.profile import Profile, parse_profile
from daemon.run import Run
from daemon.storage.frame_table import PADDING, ROW_LOST
from tests.waiting import wait_until as wait_until  # re-exported: tests import it from here

REPO = Path(__file__).resolve().parents[2]
HEIGHT, WIDTH = 48, 64
REASONS = ("camera_gap", "incomplete", "queue_full", "worker_lost", "aborted", "storage_error")


def dimensions(version: int = 3, height: int = HEIGHT, width: int = WIDTH) -> list[dict[str, Any]]:
    """t chunks of 4 frames (v3: 2 chunks per shard), frames split in chunks in y and x."""
    t: dict[str, Any] = {"name": "t", "type": "time", "array_size_px": 0, "chunk_size_px": 4}
    y: dict[str, Any] = {"name": "y", "type": "space", "array_size_px": height, "chunk_size_px": height // 2}
    x: dict[str, Any] = {"name": "x", "type": "space", "array_size_px": width, "chunk_size_px": width // 2}
    if version == 3:
        t["shard_size_chunks"], y["shard_size_chunks"], x["shard_size_chunks"] = 2, 2, 1
    return [t, y, x]


def simulated(
    name: str = "sim", key: str = "", version: int = 3, height: int = HEIGHT, width: int = WIDTH, **settings: Any
) -> dict[str, Any]:
    """A simulated camera (radial sine, uint16, 48 x 64 by default) writing array ``key``."""
    values = {"pattern": "radial_sine", "height": height, "width": width, "dtype": "uint16", **settings}
    dims = dimensions(version, height, width)
    return {"name": name, "driver": "simulated", "settings": values, "output_key": key, "dimensions": dims}


def profile(
    data_root: Path,
    cameras: Sequence[Mapping[str, Any]],
    *,
    acquisition: Mapping[str, Any],
    store: str = "run.zarr",
    version: int = 3,
    **storage: Any,
) -> Profile:
    """A validated profile (written as JSON, which is YAML) with the store under ``data_root``."""
    doc = {
        "cameras": list(cameras),
        "acquisition": {"metrics_interval_s": 0.5, **acquisition},
        "storage": {"store": store, "version": version, "overwrite": True, "max_threads": 1, **storage},
    }
    return parse_profile(json.dumps(doc), "test-profile.yaml", data_root)


def run_to_end(run: Run, timeout_s: float = 30.0) -> Mapping[str, Any]:
    """Start ``run`` and wait for it to end on its own; its summary."""
    run.start()
    assert run.wait(timeout_s), f"run did not end within {timeout_s} s: {run.status()}"
    assert run.summary is not None
    return run.summary


def drops(summary: Mapping[str, Any], camera: str | None = None) -> dict[str, int]:
    """The non-zero drops of the run (or of one camera)."""
    source = summary["dropped"] if camera is None else summary["cameras"][camera]["dropped"]
    return {reason: n for reason, n in source.items() if n}


def check_balance(summary: Mapping[str, Any]) -> None:
    """Per camera and in total: delivered == stored + every drop; the run's books agreed with the sender's."""
    assert summary["balanced"] is True, summary["errors"]
    for name, camera in summary["cameras"].items():
        assert camera["delivered"] == camera["stored"] + sum(camera["dropped"].values()), name
    assert summary["delivered"] == summary["stored"] + sum(summary["dropped"].values())
    assert set(summary["dropped"]) == set(REASONS)


def image(store: Path, key: str = "") -> Any:
    """Level 0 of the image at ``key``, opened read-only with zarr-python."""
    return zarr.open_array(store / key / "0" if key else store / "0", mode="r")


def frame_table(store: Path, key: str = "") -> dict[str, npt.NDArray[Any]]:
    """The per-frame table of the image at ``key``: column -> values."""
    group = store / key / "frames" if key else store / "frames"
    columns = ("frame_id", "device_timestamp_ns", "host_time_ns", "flags")
    return {name: zarr.open_array(group / name, mode="r")[:] for name in columns}


def check_pixels(store: Path, key: str = "", dtype: Any = np.uint16, bits: int | None = None) -> list[int]:
    """Every stored frame equals the reference radial sine of its frame id (from the table); the frame ids."""
    pixels = image(store, key)[:]
    table = frame_table(store, key)
    ids = [int(i) for i in table["frame_id"]]
    assert len(ids) == pixels.shape[0], (len(ids), pixels.shape)
    for index, frame_id in enumerate(ids):
        expected = radial_sine(frame_id, pixels.shape[-2], pixels.shape[-1], dtype, bits=bits)
        np.testing.assert_array_equal(pixels[index], expected, err_msg=f"frame {index} (id {frame_id})")
    return ids


def acqd_threads() -> list[str]:
    """Names of the run's threads still alive (readers, supervisor, sender I/O, worker watcher)."""
    prefixes = ("acqd-camera-", "acqd-run-", "acqd-frame-sender", "acqd-worker-watch")
    return [t.name for t in threading.enumerate() if t.name.startswith(prefixes)]


def check_resumed_store(store: Path, resume: Mapping[str, Any], stored: int, frame: tuple[int, int]) -> None:
    """A resumed store (``resume``: the run summary's record of one array, ``stored``: the resumed run's frames,
    ``frame``: its height and width): old rows equal their pattern, the gap is flagged and reads 0, the new run's
    frames follow, ``acqd.resumes`` records it, and the OME metadata is still valid."""
    group = zarr.open_group(str(store), mode="r")
    images = np.asarray(group["0"][:])
    ids = np.asarray(group["frames/frame_id"][:])
    flags = np.asarray(group["frames/flags"][:])
    before, at = resume["claimed_before"], resume["at_index"]
    assert resume["padding_frames"] == at - before
    assert len(images) == len(ids) == resume["store_frames"] == at + stored
    rows_before = resume["table_rows_before"]
    for row in [*range(rows_before), *range(at, len(ids))]:
        assert not flags[row] & (ROW_LOST | PADDING)
        np.testing.assert_array_equal(images[row], radial_sine(int(ids[row]), *frame, np.uint16), f"row {row}")
    assert (ids[rows_before:at] == -1).all()
    assert (flags[rows_before:before] == ROW_LOST).all()
    assert (flags[before:at] == PADDING).all()
    assert not images[before:at].any(), "the gap reads as the fill value"
    attributes = json.loads((store / "zarr.json").read_text())["attributes"]
    records = attributes["acqd"]["resumes"]
    assert len(records) == 1
    assert records[0]["interrupted_at"] == resume["interrupted_at"]
    assert {k: records[0][k] for k in ("at_index", "claimed_before", "padding_frames")} == {
        k: resume[k] for k in ("at_index", "claimed_before", "padding_frames")
    }
    v05.Image.from_zarr(group)  # the OME metadata is still valid
