"""ZarrStream's lifecycle: opening a store, caller errors that change nothing, close, stats and logs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from structlog.testing import capture_logs

from daemon.errors import ConfigError, StoreExistsError, StreamClosedError
from daemon.storage import ArraySettings, StreamSettings, ZarrStream
from daemon.storage.s3_settings import S3Settings
from tests.storage.support import dims, random_frames, read, settings

SPEC = [("t", "time", 0, 2), ("y", "space", 8, 4), ("x", "space", 6, 3)]


def test_close_is_idempotent(tmp_path: Path) -> None:
    path = tmp_path / "s.zarr"
    stream = ZarrStream(settings(path, dims(SPEC)))
    stream.append(random_frames(3, 8, 6, "uint16"))
    stream.close()
    before = {p: p.stat().st_mtime_ns for p in path.rglob("*")}
    stream.close()
    assert {p: p.stat().st_mtime_ns for p in path.rglob("*")} == before
    assert not stream.is_active()


def test_append_after_close_raises_stream_closed(tmp_path: Path) -> None:
    stream = ZarrStream(settings(tmp_path / "s.zarr", dims(SPEC)))
    stream.close()
    with pytest.raises(StreamClosedError, match="closed"):
        stream.append(random_frames(1, 8, 6, "uint16")[0])


def test_the_context_manager_closes(tmp_path: Path) -> None:
    path = tmp_path / "s.zarr"
    frames = random_frames(3, 8, 6, "uint16")
    with ZarrStream(settings(path, dims(SPEC))) as stream:
        stream.append(frames)
    assert not stream.is_active()
    np.testing.assert_array_equal(read(path, "0"), frames)


def test_an_existing_store_is_refused_without_overwrite(tmp_path: Path) -> None:
    path = tmp_path / "s.zarr"
    path.mkdir()
    (path / "precious").write_bytes(b"x")
    with pytest.raises(StoreExistsError, match=r"store_path .*s\.zarr already exists and overwrite is False"):
        ZarrStream(settings(path, dims(SPEC)))
    assert (path / "precious").read_bytes() == b"x"


def test_overwrite_replaces_an_existing_store(tmp_path: Path) -> None:
    path = tmp_path / "s.zarr"
    path.mkdir()
    (path / "old").write_bytes(b"x")
    frames = random_frames(2, 8, 6, "uint16")
    with ZarrStream(settings(path, dims(SPEC), overwrite=True)) as stream:
        stream.append(frames)
    assert not (path / "old").exists()
    np.testing.assert_array_equal(read(path, "0"), frames)


def test_s3_settings_with_a_local_path_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="store_path must be an 's3://"):
        ZarrStream(settings(tmp_path / "s.zarr", dims(SPEC), s3=S3Settings(endpoint="http://127.0.0.1:1")))
    assert not (tmp_path / "s.zarr").exists()


def two_arrays(tmp_path: Path) -> ZarrStream:
    arrays = [ArraySettings(output_key=k, data_type="uint16", dimensions=dims(SPEC)) for k in ("a", "b")]
    return ZarrStream(StreamSettings(store_path=str(tmp_path / "s.zarr"), arrays=arrays))


@pytest.mark.parametrize(
    ("data", "key", "words"),
    [
        (np.zeros((8, 5), "uint16"), "a", ["array 'a'", "shape (8, 6)", "Got shape (8, 5)"]),
        (np.zeros((3, 6, 8), "uint16"), "a", ["array 'a'", "shape (8, 6)", "Got shape (3, 6, 8)"]),
        (np.zeros(6, "uint16"), "a", ["array 'a'", "shape (8, 6)", "Got shape (6,)"]),
        (np.zeros((8, 6), "uint8"), "a", ["array 'a'", "data_type uint16", "Got uint8"]),
        (np.zeros((8, 6), ">u2"), "a", ["array 'a'", "data_type uint16", "Got >u2"]),
        ([[0] * 6] * 8, "a", ["array 'a'", "numpy array", "list"]),
        (np.zeros((8, 6), "uint16"), "c", ["key", "['a', 'b']", "'c'"]),
        (np.zeros((8, 6), "uint16"), None, ["key", "['a', 'b']", "None"]),
    ],
)
def test_a_caller_error_raises_config_error_and_changes_nothing(
    tmp_path: Path, data: object, key: str | None, words: list[str]
) -> None:
    with two_arrays(tmp_path) as stream:
        with pytest.raises(ConfigError) as failure:
            stream.append(data, key=key)  # type: ignore[arg-type]
        for word in words:
            assert word in str(failure.value)
        assert stream.frames_appended("a") == stream.frames_appended("b") == 0
        stream.append(np.ones((8, 6), "uint16"), key="a")  # still usable
    np.testing.assert_array_equal(read(tmp_path / "s.zarr", "a/0"), np.ones((1, 8, 6), "uint16"))


def test_a_full_fixed_array_refuses_more_frames(tmp_path: Path) -> None:
    spec = [("z", "space", 3, 2), ("y", "space", 8, 4), ("x", "space", 6, 3)]
    frames = random_frames(4, 8, 6, "uint16")
    with ZarrStream(settings(tmp_path / "s.zarr", dims(spec))) as stream:
        stream.append(frames[:2])
        with pytest.raises(ConfigError, match=r"holds 3 frames .* has 2: cannot append 2 more"):
            stream.append(frames[2:])
        stream.append(frames[2])
    np.testing.assert_array_equal(read(tmp_path / "s.zarr", "0"), frames[:3])


def test_a_chunk_larger_than_its_dimension_is_clamped_and_logged(tmp_path: Path) -> None:
    spec = [("t", "time", 0, 2), ("c", "channel", 3, 8), ("y", "space", 8, 16), ("x", "space", 6, 3)]
    path = tmp_path / "s.zarr"
    with capture_logs() as logs, ZarrStream(settings(path, dims(spec, [1, 4, 1, 1]))) as stream:
        stream.append(random_frames(6, 8, 6, "uint16"))
    clamps = {(e["dimension"], e["field"], e["requested"], e["used"]) for e in logs if e["event"] == "chunk_clamped"}
    assert clamps == {("c", "chunk_size_px", 8, 3), ("y", "chunk_size_px", 16, 8), ("c", "shard_size_chunks", 4, 1)}
    meta = json.loads((path / "0" / "zarr.json").read_text())
    assert meta["codecs"][0]["configuration"]["chunk_shape"] == [2, 3, 8, 3]
    assert meta["chunk_grid"]["configuration"]["chunk_shape"] == [2, 3, 8, 3]


def test_stats_count_bytes_in_and_chunks_written(tmp_path: Path) -> None:
    frames = random_frames(5, 8, 6, "uint16")
    with ZarrStream(settings(tmp_path / "s.zarr", dims(SPEC))) as stream:
        stream.append(frames)
    stats = stream.stats()
    assert stats.frames_appended == stats.frames_stored == 5
    assert stats.bytes_in == frames.nbytes
    assert stats.chunks_written == 3 * 2 * 2  # t chunks (2, 2, 1) x 2 y tiles x 2 x tiles
    assert stats.objects_finalized == stats.chunks_written  # unsharded: one object per chunk
    on_disk = sum(p.stat().st_size for p in (tmp_path / "s.zarr").rglob("*") if p.is_file())
    assert stats.bytes_written >= on_disk


def test_close_logs_one_summary(tmp_path: Path) -> None:
    with capture_logs() as logs, ZarrStream(settings(tmp_path / "s.zarr", dims(SPEC))) as stream:
        stream.append(random_frames(2, 8, 6, "uint16"))
    (summary,) = [e for e in logs if e["event"] == "stream_closed"]
    assert summary["ok"] is True
    assert summary["frames_appended"] == 2
    assert summary["bytes_in"] == 2 * 8 * 6 * 2
