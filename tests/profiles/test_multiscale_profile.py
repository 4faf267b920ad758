"""A profile's ``storage.multiscale`` gives every camera's array a pyramid; ``acqd validate`` plans the same levels
and writer memory as the engine."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from structlog.testing import capture_logs

from daemon.profile import parse_profile
from daemon.profile_summary import format_summary, summarize
from daemon.storage import DownsamplingMethod, ZarrStream

TWO_CAMERAS = """\
cameras:
  - name: left
    driver: simulated
    settings: {height: 64, width: 48, dtype: uint16}
    output_key: left
    dimensions:
      - {name: t, type: time, array_size_px: 0, chunk_size_px: 2, shard_size_chunks: 2}
      - {name: z, type: space, array_size_px: 5, chunk_size_px: 2}
      - {name: y, type: space, array_size_px: 64, chunk_size_px: 16, shard_size_chunks: 2}
      - {name: x, type: space, array_size_px: 48, chunk_size_px: 16}
  - name: right
    driver: simulated
    settings: {height: 40, width: 40, dtype: uint8}
    output_key: right
    dimensions:
      - {name: z, type: space, array_size_px: 0, chunk_size_px: 4}
      - {name: y, type: space, array_size_px: 40, chunk_size_px: 8}
      - {name: x, type: space, array_size_px: 40, chunk_size_px: 8}
acquisition: {frames: 15}
storage:
  store: m.zarr
  version: 3
  multiscale: {method: mean, max_levels: 3}
"""


def test_the_multiscale_section_reaches_every_array(tmp_path: Path) -> None:
    profile = parse_profile(TWO_CAMERAS, "m.yaml", tmp_path)
    for array in profile.stream.arrays:
        assert array.downsampling_method is DownsamplingMethod.MEAN
        assert array.max_levels == 3


def test_left_out_means_no_pyramid(tmp_path: Path) -> None:
    text = TWO_CAMERAS.replace("  multiscale: {method: mean, max_levels: 3}\n", "")
    profile = parse_profile(text, "m.yaml", tmp_path)
    assert [(a.method, a.max_levels) for a in profile.stream.arrays] == [(None, None), (None, None)]
    assert all(len(s.levels) == 1 for s in summarize(profile))
    assert "    pyramid " not in format_summary(profile, summarize(profile))


def test_the_summary_plans_the_levels_and_memory_the_engine_uses(tmp_path: Path) -> None:
    profile = parse_profile(TWO_CAMERAS, "m.yaml", tmp_path)
    summaries = summarize(profile)
    assert [s.levels for s in summaries] == [
        ((3, 5, 64, 48), (3, 3, 32, 24), (3, 2, 16, 12)),
        ((15, 40, 40), (8, 20, 20), (4, 10, 10)),
    ]
    with capture_logs() as logs:
        stream = ZarrStream(profile.stream)
    try:
        [opened] = [event for event in logs if event["event"] == "stream_opened"]
        assert opened["buffer_bytes"] == sum(s.writer_bytes for s in summaries)
        for summary in summaries:
            stream.append(np.ones((15, *summary.shape[-2:]), dtype=summary.dtype), key=summary.output_key)
    finally:
        stream.close()
    for summary in summaries:
        for n, shape in enumerate(summary.levels):
            doc = json.loads((tmp_path / "m.zarr" / summary.output_key / str(n) / "zarr.json").read_text())
            assert tuple(doc["shape"]) == shape
    text = format_summary(profile, summaries)
    assert "pyramid    mean, 3 levels; levels 1..: 3 x 3 x 32 x 24, 3 x 2 x 16 x 12" in text
    assert "pyramid    mean, 3 levels; levels 1..: 8 x 20 x 20, 4 x 10 x 10" in text
