"""Appending to an interrupted store: old frames untouched, the gap at the fill value, new frames after it, the gap
recorded in the frame table and the image attributes; mismatched settings refused with precise errors."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
import zarr
from ome_zarr_models import v04, v05

from daemon.errors import ConfigError, StoreExistsError
from daemon.storage import ArraySettings, CompressionSettings, Dimension, StreamSettings
from daemon.storage.append_plan import AppendPlan, plan_append, record_resume, resume_record
from daemon.storage.file_store import FileStore
from daemon.storage.frame_table import PADDING, ROW_LOST, FrameTables
from daemon.storage.location import open_store
from daemon.storage.s3_settings import S3Settings
from daemon.storage.settings_json import stream_settings_to_json
from daemon.storage.stream import ZarrStream
from tests.fixtures.s3 import SeaweedServer, download
from tests.storage.killed_writer import kill_when_stored
from tests.storage.resume_writer import HEIGHT, TABLE_ROWS, WIDTH, frame
from tests.storage.support import write_with_table

REPO = Path(__file__).resolve().parents[2]
CHANNELS = 2
LAYOUTS = [pytest.param(2, False, id="v2"), pytest.param(3, False, id="v3"), pytest.param(3, True, id="v3-sharded")]


def stream_settings(
    path: Path, version: int, sharded: bool, *, chunk_t: int = 2, method: str | None = None
) -> StreamSettings:
    shard = [2, 2, 2, 1] if sharded else [None] * 4
    spec = [
        ("t", "time", 0, chunk_t),
        ("c", "channel", CHANNELS, 1),
        ("y", "space", HEIGHT, 20),
        ("x", "space", WIDTH, 24),
    ]
    dims = [
        Dimension(n, k, size, chunk, shard_size_chunks=s) for (n, k, size, chunk), s in zip(spec, shard, strict=True)
    ]
    array = ArraySettings(
        data_type="uint16",
        dimensions=dims,
        compression=CompressionSettings("blosc-zstd", 1),
        downsampling_method=method,
    )
    return StreamSettings(store_path=str(path), version=version, arrays=[array], max_threads=2)


def frames_of(path: Path, level: str = "0") -> npt.NDArray[np.uint16]:
    array = zarr.open_array(str(path), path=level, mode="r")
    return np.asarray(array[...]).reshape(-1, HEIGHT, WIDTH)


def table_of(path: Path) -> dict[str, npt.NDArray[Any]]:
    names = ("frame_id", "device_timestamp_ns", "host_time_ns", "flags")
    return {name: np.asarray(zarr.open_array(str(path), path=f"frames/{name}", mode="r")[...]) for name in names}


def image_attributes(path: Path, version: int) -> dict[str, Any]:
    if version == 3:
        attrs: dict[str, Any] = json.loads((path / "zarr.json").read_text())["attributes"]
        return attrs
    attrs = json.loads((path / ".zattrs").read_text())
    return attrs


def crash_writer(settings: StreamSettings, min_stored: int, timeout_s: float = 30) -> None:
    """Run :mod:`tests.storage.resume_writer` until it reports ``min_stored`` stored frames, then SIGKILL it."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.storage.resume_writer", json.dumps(stream_settings_to_json(settings))],
        cwd=REPO,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    kill_when_stored(proc, min_stored, time.monotonic() + timeout_s)


def write_closed(settings: StreamSettings, n: int) -> None:
    """What an orphaned worker does: store frames ``0 .. n`` (with their table rows) and close."""
    write_with_table(settings, [frame(k) for k in range(n)], TABLE_ROWS)


def resume(settings: StreamSettings, first: int, count: int, run_id: str = "run-2") -> tuple[AppendPlan, int]:
    """Append frames ``first .. first + count`` to the store; the plan and the frames the stream stored."""
    store = FileStore(settings.store_path)
    plan = plan_append(store, settings)
    stream = ZarrStream(settings, store=store, append=plan)
    record = resume_record(plan.image(""), run_id=run_id, resumes="run-1", interrupted_at=1.0, resumed_at=2.0)
    record_resume(store, plan.version, "", record)
    tables = FrameTables(store, settings.version_enum, [""], chunk_rows=TABLE_ROWS, resume=plan)
    for j in range(count):
        stream.append(frame(first + j))
        tables.table("").add(first + j, 10 * (first + j), 100 * (first + j), 0)
    stream.close()
    stored = stream.frames_stored()
    tables.stored("", stored)
    tables.close()
    assert stream.frames_appended() == count
    return plan, stored


def check_resumed(path: Path, plan: AppendPlan, old: int, new_first: int, count: int) -> None:
    """Frames ``< old`` are the old run's, then fill value up to ``at_index``, then ``count`` new frames."""
    image = plan.image("")
    data = frames_of(path)
    at = image.at_index
    assert len(data) == at + -(-count // CHANNELS) * CHANNELS
    for k in range(old):
        np.testing.assert_array_equal(data[k], frame(k), err_msg=f"old frame {k}")
    assert not data[old:at].any(), "the gap must read as the fill value"
    for j in range(count):
        np.testing.assert_array_equal(data[at + j], frame(new_first + j), err_msg=f"new frame {j}")
    table = table_of(path)
    rows_before = image.table_rows
    assert len(table["frame_id"]) == at + count
    np.testing.assert_array_equal(table["frame_id"][:rows_before], np.arange(rows_before))
    np.testing.assert_array_equal(table["host_time_ns"][:rows_before], 100 * np.arange(rows_before))
    lost = table["flags"][rows_before : image.claimed_before]
    padding = table["flags"][image.claimed_before : at]
    assert (lost == ROW_LOST).all()
    assert (padding == PADDING).all()
    assert (table["frame_id"][rows_before:at] == -1).all()
    np.testing.assert_array_equal(table["frame_id"][at:], new_first + np.arange(count))
    assert not table["flags"][at:].any()


@pytest.mark.slow
@pytest.mark.parametrize(("version", "sharded"), LAYOUTS)
def test_resume_after_sigkill_appends_after_the_claim(tmp_path: Path, version: int, sharded: bool) -> None:
    settings = stream_settings(tmp_path / "s.zarr", version, sharded)
    crash_writer(settings, min_stored=40)
    claimed = frames_of(tmp_path / "s.zarr").shape[0]
    assert claimed >= 40
    plan, stored = resume(settings, 5000, 13)
    image = plan.image("")
    assert image.claimed_before == claimed
    assert image.at_index % (CHANNELS * (4 if sharded else 2)) == 0  # a fresh object row along t
    assert 0 <= image.padding_frames < CHANNELS * (4 if sharded else 2)
    assert stored == 13
    check_resumed(tmp_path / "s.zarr", plan, claimed, 5000, 13)


@pytest.mark.parametrize(("version", "sharded"), LAYOUTS)
def test_resume_after_a_ragged_close_leaves_a_recorded_gap(tmp_path: Path, version: int, sharded: bool) -> None:
    path = tmp_path / "r.zarr"
    settings = stream_settings(path, version, sharded)
    write_closed(settings, 11)  # t = 0..5, the last index half filled: a ragged row
    plan, _ = resume(settings, 100, 9)
    image = plan.image("")
    row = CHANNELS * (4 if sharded else 2)
    assert image.claimed_before == 12
    assert image.table_rows == 11
    assert image.at_index == -(-12 // row) * row
    assert image.padding_frames == image.at_index - 12
    check_resumed(path, plan, 11, 100, 9)
    record = image_attributes(path, version)["acqd"]["resumes"]
    assert record == [
        {
            "run_id": "run-2",
            "resumes": "run-1",
            "at_index": image.at_index,
            "claimed_before": 12,
            "padding_frames": image.padding_frames,
            "table_rows_before": 11,
            "interrupted_at": 1.0,
            "resumed_at": 2.0,
        }
    ]
    model = v05.Image if version == 3 else v04.Image
    model.from_zarr(zarr.open_group(str(path), mode="r"))  # the OME metadata is still valid


def test_a_second_resume_appends_a_second_record(tmp_path: Path) -> None:
    path = tmp_path / "twice.zarr"
    settings = stream_settings(path, 3, True)
    write_closed(settings, 3)
    first, _ = resume(settings, 100, 5)
    second, _ = resume(settings, 200, 4, run_id="run-3")
    data = frames_of(path)
    at1, at2 = first.image("").at_index, second.image("").at_index
    assert at2 > at1 >= 3
    np.testing.assert_array_equal(data[at1 + 4], frame(104))
    np.testing.assert_array_equal(data[at2], frame(200))
    resumes = image_attributes(path, 3)["acqd"]["resumes"]
    assert [r["run_id"] for r in resumes] == ["run-2", "run-3"]
    assert table_of(path)["frame_id"][at2 + 3] == 203


def test_a_resume_that_stores_nothing_claims_nothing_more(tmp_path: Path) -> None:
    path = tmp_path / "empty.zarr"
    settings = stream_settings(path, 3, True)
    write_closed(settings, 5)
    before = frames_of(path).shape[0]
    plan, stored = resume(settings, 0, 0)
    assert stored == 0
    assert plan.image("").padding_frames > 0
    assert frames_of(path).shape[0] == before
    assert len(table_of(path)["frame_id"]) == 5


def test_a_multiscale_time_series_resumes_at_every_level(tmp_path: Path) -> None:
    path = tmp_path / "pyramid.zarr"
    settings = stream_settings(path, 3, True, method="decimate")
    write_closed(settings, 7)
    plan, _ = resume(settings, 50, 8)
    at = plan.image("").at_index
    level1 = np.asarray(zarr.open_array(str(path), path="1", mode="r")[...])
    flat = level1.reshape(-1, *level1.shape[-2:])
    np.testing.assert_array_equal(flat[at], frame(50)[::2, ::2])
    assert not flat[8:at].any()
    np.testing.assert_array_equal(frames_of(path)[at + 7], frame(57))
    v05.Image.from_zarr(zarr.open_group(str(path), mode="r"))


def test_a_pyramid_downsampling_dimension_0_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "zstack.zarr"
    dims = [Dimension("z", "space", 0, 2), Dimension("y", "space", HEIGHT, 20), Dimension("x", "space", WIDTH, 24)]
    settings = StreamSettings(
        store_path=str(path), arrays=[ArraySettings(data_type="uint16", dimensions=dims, downsampling_method="mean")]
    )
    ZarrStream(settings).close()
    with pytest.raises(ConfigError, match=r"dimension 0 \('z'\) is of type space"):
        plan_append(FileStore(path), settings)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        pytest.param({"chunk_t": 4}, r"array '0': chunk_grid is .* in the store; the settings give", id="chunks"),
        pytest.param(
            {"sharded": False},
            r"array '0': chunk_grid is .*\[4, 2, 40, 24\].* in the store; the settings give .*\[2, 1, 20, 24\]",
            id="sharding",
        ),
        pytest.param(
            {"dtype": "uint8"}, r"array '0': data_type is 'uint16' in the store; the settings give 'uint8'", id="dtype"
        ),
        pytest.param({"compression": None}, r"array '0': codecs is", id="codec"),
        pytest.param(
            {"channels": 3},
            r"array '0': shape is \[3, 2, 40, 24\] in the store; the settings give \[3, 3, 40, 24\]",
            id="shape",
        ),
        pytest.param({"key": "other"}, r"has no array at 'other/0'", id="key"),
        pytest.param({"version": 2, "sharded": False}, r"holds no Zarr v2 group", id="version"),
    ],
)
def test_mismatched_settings_are_refused_with_field_and_values(
    tmp_path: Path, change: dict[str, Any], message: str
) -> None:
    path = tmp_path / "m.zarr"
    write_closed(stream_settings(path, 3, True), 5)
    settings = stream_settings(
        path, change.get("version", 3), change.get("sharded", True), chunk_t=change.get("chunk_t", 2)
    )
    array = settings.arrays[0]
    if "dtype" in change:
        array = dataclasses.replace(array, data_type=change["dtype"])
    if "compression" in change:
        array = dataclasses.replace(array, compression=None)
    if "channels" in change:
        dims = list(array.dimensions)
        dims[1] = dataclasses.replace(dims[1], array_size_px=change["channels"])
        array = dataclasses.replace(array, dimensions=dims)
    if "key" in change:
        array = dataclasses.replace(array, output_key=change["key"])
    settings = dataclasses.replace(settings, arrays=[array])
    with pytest.raises(ConfigError, match=message):
        plan_append(FileStore(path), settings)


def test_a_v2_zstd_store_written_with_checksum_false_still_resumes(tmp_path: Path) -> None:
    """Stores written before acqd left plain Zstd's ``checksum: false`` out of ``.zarray`` resume as before; one
    asking for checksums is refused, naming the compressor."""
    path = tmp_path / "old.zarr"
    base = stream_settings(path, 2, False)
    settings = dataclasses.replace(
        base, arrays=[dataclasses.replace(base.arrays[0], compression=CompressionSettings("zstd", 3))]
    )
    write_closed(settings, 3)
    zarray = path / "0" / ".zarray"
    doc = json.loads(zarray.read_text())
    assert doc["compressor"] == {"id": "zstd", "level": 3}
    doc["compressor"]["checksum"] = False  # what acqd wrote before
    zarray.write_text(json.dumps(doc))
    plan, stored = resume(settings, 100, 4)
    assert stored == 4
    check_resumed(path, plan, 3, 100, 4)
    doc["compressor"]["checksum"] = True
    zarray.write_text(json.dumps(doc))
    with pytest.raises(ConfigError, match=r"array '0': compressor is \{.*'checksum': True\} in the store"):
        plan_append(FileStore(path), settings)


def test_an_empty_store_has_nothing_to_append_to(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="holds no Zarr v3 group: there is nothing to append to"):
        plan_append(FileStore(tmp_path / "none.zarr"), stream_settings(tmp_path / "none.zarr", 3, True))


def test_without_a_plan_an_existing_store_is_still_refused(tmp_path: Path) -> None:
    path = tmp_path / "exists.zarr"
    write_closed(stream_settings(path, 3, True), 2)
    with pytest.raises(StoreExistsError):
        ZarrStream(stream_settings(path, 3, True))


@pytest.mark.s3
@pytest.mark.slow
def test_an_s3_store_is_resumed_like_a_local_one(
    s3_server: SeaweedServer, s3_settings: S3Settings, tmp_path: Path
) -> None:
    bucket = s3_server.make_bucket()
    local = stream_settings(tmp_path / "unused.zarr", 3, True)
    settings = dataclasses.replace(local, store_path=f"s3://{bucket}/runs/r.zarr", s3=s3_settings)
    with ZarrStream(settings) as stream:
        for k in range(11):
            stream.append(frame(k))
    store = open_store(settings.store_path, settings.s3)
    plan = plan_append(store, settings)
    record_resume(
        store,
        plan.version,
        "",
        resume_record(plan.image(""), run_id="b", resumes="a", interrupted_at=None, resumed_at=3.0),
    )
    with ZarrStream(settings, store=store, append=plan) as stream:
        for j in range(9):
            stream.append(frame(100 + j))
    download(s3_server, bucket, "runs/r.zarr", tmp_path / "copy.zarr")
    assert s3_server.uploads(bucket) == []
    data = frames_of(tmp_path / "copy.zarr")
    at = plan.image("").at_index
    assert at == 16
    for k in range(11):
        np.testing.assert_array_equal(data[k], frame(k))
    assert not data[11:at].any()
    for j in range(9):
        np.testing.assert_array_equal(data[at + j], frame(100 + j))
    assert image_attributes(tmp_path / "copy.zarr", 3)["acqd"]["resumes"][0]["at_index"] == at
