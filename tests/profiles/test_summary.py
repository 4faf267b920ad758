"""What ``acqd validate`` promises: shapes, chunk and shard bytes, rates and writer memory, checked by hand and
against the real storage engine writing the same profile."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from structlog.testing import capture_logs

from daemon.profile import load_profile, parse_profile
from daemon.profile_summary import ArraySummary, format_summary, human_bytes, summarize
from daemon.storage import ZarrStream
from daemon.storage.stream import IO_WAIT_WORKERS

PROFILES = Path(__file__).resolve().parents[2] / "config" / "profiles"
MIB = 2**20


def test_demo_figures_by_hand(tmp_path: Path) -> None:
    [demo] = summarize(load_profile(PROFILES / "demo.yaml", tmp_path))
    assert demo.shape == (200, 512, 512)
    assert demo.frame_bytes == 512 * 512 * 2
    assert (demo.chunk_shape, demo.chunk_bytes) == ((64, 256, 256), 64 * 256 * 256 * 2)
    assert (demo.shard_shape, demo.shard_bytes, demo.chunks_per_shard) == ((64, 512, 512), 32 * MIB, 4)
    assert demo.objects == 4  # ceil(200 / 64) shard rows, one shard per row
    assert demo.mb_per_s == pytest.approx(100 * 512 * 512 * 2 / 1e6)
    assert demo.objects_per_s == pytest.approx(100 / 64)
    assert demo.writer_bytes == 2 * 32 * MIB  # two blocks of one chunk group (64 frames x 512 x 512 uint16)
    assert demo.camera_bytes == 128 * 512 * 512 * 2  # the radial sine's 128 phases, kept drawn
    assert demo.memory_bytes == 64 * MIB + 256 * MIB + 64 * MIB


def test_camera_frames_count_in_the_memory(tmp_path: Path) -> None:
    demo = (PROFILES / "demo.yaml").read_text()
    [genicam] = summarize(load_profile(PROFILES / "genicam.yaml", tmp_path))
    # num_buffers: 16 frames of 1024 x 1024 uint16 for the producer, as many frame slots in shared memory
    assert genicam.camera_bytes == 2 * 16 * 1024 * 1024 * 2
    assert genicam.memory_bytes == genicam.writer_bytes + genicam.queue_bytes + genicam.camera_bytes
    drawn = {
        "random": demo.replace("pattern: radial_sine", "pattern: random"),
        "too small a cache": demo.replace("# phase_cache_mib: 256  ", "phase_cache_mib: 63"),
        "no cache": demo.replace("# phase_cache_mib: 256  ", "phase_cache_mib: 0"),
    }
    for case, text in drawn.items():
        assert text != demo, case
        [summary] = summarize(parse_profile(text, "drawn.yaml", tmp_path))
        assert summary.camera_bytes == 0, case
    text = demo.replace("# phase_cache_mib: 256  ", "phase_cache_mib: 64")
    assert summarize(parse_profile(text, "kept.yaml", tmp_path))[0].camera_bytes == 64 * MIB


def test_5d_figures_by_hand(tmp_path: Path) -> None:
    [stack] = summarize(load_profile(PROFILES / "5d.yaml", tmp_path))
    assert stack.shape == (10, 2, 16, 256, 256)  # 320 frames / (2 x 16) per time point
    assert stack.shard_shape == (4, 1, 16, 256, 256)
    assert stack.objects == 3 * 2  # ceil(10 / 4) rows x 2 channels
    assert stack.objects_per_s == pytest.approx(500 * 2 / (4 * 32))
    # One group (4 tiles x 16 planes, 2 MiB) is one job, so the pool holds the open group plus one flushed group
    # per worker (max_threads: 0 is one thread per core, plus the worker that waits on the disk).
    workers = (os.cpu_count() or 1) + IO_WAIT_WORKERS
    assert stack.writer_bytes == (1 + workers) * (2 * 2) * 16 * 128 * 128 * 2


def test_rates_are_left_out_when_the_profile_does_not_fix_the_frame_rate(tmp_path: Path) -> None:
    text = (PROFILES / "demo.yaml").read_text().replace("trigger: free", "trigger: software")
    [summary] = summarize(parse_profile(text, "sw.yaml", tmp_path))
    assert (summary.frame_rate_hz, summary.mb_per_s, summary.objects_per_s) == (None, None, None)
    assert summary.objects == 4


def test_a_duration_gives_the_frame_count_at_the_camera_rate(tmp_path: Path) -> None:
    profile = load_profile(PROFILES / "two_cameras.yaml", tmp_path)
    assert [(s.frames, s.shape[0], s.objects) for s in summarize(profile)] == [(1500, 1500, 30 * 4), (300, 300, 30)]


def test_the_text_names_every_figure(tmp_path: Path) -> None:
    profile = load_profile(PROFILES / "demo.yaml", tmp_path)
    text = format_summary(profile, summarize(profile))
    assert f"{PROFILES / 'demo.yaml'}: valid" in text
    for fragment in (
        "shape      200 x 512 x 512 (t, y, x) uint16",
        "chunk      64 x 256 x 256 = 8.0 MiB",
        "shard      64 x 512 x 512 = 32.0 MiB (4 chunks)",
        "objects    4 shards",
        "rate       52.4 MB/s uncompressed, 1.56 shards/s",
        "memory     64.0 MiB writer buffers + 256.0 MiB queue + 64.0 MiB camera frames = 384.0 MiB",
    ):
        assert fragment in text


def test_human_bytes() -> None:
    assert [human_bytes(n) for n in (512, 1536, 256 * MIB, 3 * 2**30)] == ["512 B", "1.5 KiB", "256.0 MiB", "3.0 GiB"]


# The same profiles written by the real engine: the summary must match what it allocates and writes.
ENGINE_CASES = {
    "5d-sharded-v3": """\
cameras:
  - name: stack
    driver: simulated
    settings: {height: 48, width: 40, dtype: uint16}
    dimensions:
      - {name: t, type: time, array_size_px: 0, chunk_size_px: 2, shard_size_chunks: 2}
      - {name: c, type: channel, array_size_px: 3, chunk_size_px: 1}
      - {name: z, type: space, array_size_px: 5, chunk_size_px: 2, shard_size_chunks: 2}
      - {name: y, type: space, array_size_px: 48, chunk_size_px: 16, shard_size_chunks: 2}
      - {name: x, type: space, array_size_px: 40, chunk_size_px: 16}
acquisition: {frames: 100}
storage: {store: e.zarr, version: 3, compression: {codec: blosc-lz4, level: 1}}
""",
    "two-cameras-v2": """\
cameras:
  - name: a
    driver: simulated
    settings: {height: 30, width: 20, dtype: uint8}
    output_key: s/a
    dimensions:
      - {name: t, type: time, array_size_px: 0, chunk_size_px: 7}
      - {name: y, type: space, array_size_px: 30, chunk_size_px: 16}
      - {name: x, type: space, array_size_px: 20, chunk_size_px: 16, shard_size_chunks: 1}
  - name: b
    driver: simulated
    settings: {height: 8, width: 8, dtype: uint16}
    output_key: s/b
    dimensions:
      - {name: t, type: time, array_size_px: 9, chunk_size_px: 4}
      - {name: y, type: space, array_size_px: 8, chunk_size_px: 8}
      - {name: x, type: space, array_size_px: 8, chunk_size_px: 8}
acquisition: {frames: 9}
storage: {store: e.zarr, version: 2}
""",
    "clamped-chunks": """\
cameras:
  - name: cam
    driver: simulated
    settings: {height: 20, width: 24, dtype: uint16}
    dimensions:
      - {name: t, type: time, array_size_px: 0, chunk_size_px: 4, shard_size_chunks: 3}
      - {name: y, type: space, array_size_px: 20, chunk_size_px: 64, shard_size_chunks: 4}
      - {name: x, type: space, array_size_px: 24, chunk_size_px: 10, shard_size_chunks: 8}
acquisition: {frames: 13}
storage: {store: e.zarr, version: 3}
""",
}


def _array_shape(store: Path, key: str) -> list[int]:
    v3 = store / key / "0" / "zarr.json"
    doc = json.loads(v3.read_text()) if v3.exists() else json.loads((store / key / "0" / ".zarray").read_text())
    shape: list[int] = doc["shape"]
    return shape


@pytest.mark.parametrize("name", list(ENGINE_CASES))
def test_the_summary_matches_what_the_engine_allocates_and_writes(name: str, tmp_path: Path) -> None:
    profile = parse_profile(ENGINE_CASES[name], f"{name}.yaml", tmp_path)
    summaries: list[ArraySummary] = summarize(profile)
    with capture_logs() as logs:
        stream = ZarrStream(profile.stream)
    try:
        [opened] = [event for event in logs if event["event"] == "stream_opened"]
        assert opened["buffer_bytes"] == sum(s.writer_bytes for s in summaries)
        for summary in summaries:
            assert summary.frames is not None
            frames = np.zeros((summary.frames, *summary.shape[-2:]), dtype=summary.dtype)
            stream.append(frames, key=summary.output_key)
    finally:
        stream.close()
    assert stream.stats().objects_finalized == sum(s.objects or 0 for s in summaries)
    for summary in summaries:
        assert _array_shape(tmp_path / "e.zarr", summary.output_key) == list(summary.shape)


def test_clamped_chunks_and_shards_are_reported_as_the_engine_will_use_them(tmp_path: Path) -> None:
    [summary] = summarize(parse_profile(ENGINE_CASES["clamped-chunks"], "c.yaml", tmp_path))
    assert [(c.dimension, c.field, c.requested, c.used) for c in summary.clamps] == [
        ("y", "chunk_size_px", 64, 20),
        ("y", "shard_size_chunks", 4, 1),
        ("x", "shard_size_chunks", 8, 3),
    ]
    assert summary.chunk_shape == (4, 20, 10)
