"""Metrics helpers: acknowledgement latency from queued/stored counts, interval rates, RSS and store size, and the
terminal progress and result lines of ``acqd run``."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest

from daemon.metrics import AckLatency, Sample, interval_metrics, process_rss_bytes, tree_bytes
from daemon.progress import CLEAR, ProgressLine, format_progress
from daemon.run_foreground import result_line, succeeded
from daemon.run_manager import RunState, RunStatus


def test_ack_latency_is_the_time_since_the_stored_frame_was_queued() -> None:
    latency = AckLatency()
    latency.sample(0.0, queued=0, stored=0)
    latency.sample(1.0, queued=5, stored=0)
    latency.sample(2.0, queued=9, stored=0)
    assert latency.take_worst() is None
    latency.sample(2.5, queued=9, stored=5)  # frame 5 was queued by t=1.0
    assert latency.take_worst() == pytest.approx(1.5)
    latency.sample(3.0, queued=12, stored=6)  # frame 6 by t=2.0
    latency.sample(3.2, queued=12, stored=9)  # frame 9 by t=2.0
    assert latency.take_worst() == pytest.approx(1.2)
    assert latency.take_worst() is None


def test_interval_metrics_turn_counters_into_rates() -> None:
    before = Sample(
        10.0, frames_read=100, bytes_read=100_000_000, frames_stored=90, bytes_stored=90_000_000, store_bytes=10_000_000
    )
    after = Sample(
        12.0,
        frames_read=300,
        bytes_read=300_000_000,
        frames_stored=250,
        bytes_stored=250_000_000,
        store_bytes=110_000_000,
    )
    fields = interval_metrics(
        before,
        after,
        queue={"queue_frames": 3},
        drops={"queue_full": 1},
        cameras={},
        ack_latency_s=0.25,
        worker_pid=None,
    )
    assert (fields["frames_in_per_s"], fields["frames_stored_per_s"]) == (100.0, 80.0)
    assert (fields["mb_in_per_s"], fields["mb_stored_per_s"], fields["mb_written_per_s"]) == (100.0, 80.0, 50.0)
    assert fields["compression_ratio"] == pytest.approx(250 / 110, abs=1e-3)
    assert (fields["queue_frames"], fields["drops"], fields["ack_latency_s"]) == (3, {"queue_full": 1}, 0.25)
    assert fields["worker_rss_bytes"] is None


def test_rss_and_store_size(tmp_path: Path) -> None:
    assert (process_rss_bytes() or 0) > 10_000_000
    assert process_rss_bytes(os.getpid()) is not None
    assert process_rss_bytes(2**22 + 12345) is None  # no such process
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "a" / "x").write_bytes(b"1" * 100)
    (tmp_path / "a" / "b" / "y").write_bytes(b"2" * 50)
    assert tree_bytes(tmp_path / "a") == 150
    assert tree_bytes(tmp_path / "missing") == 0


def status(**counts: int) -> RunStatus:
    return RunStatus("r", RunState.RUNNING, "p.yaml", "/d/s.zarr", 0.0, counts=counts, drops={"queue_full": 2})


def test_the_progress_line_is_redrawn_in_place() -> None:
    line = format_progress(
        status(frames_delivered=1234, frames_stored=1200, queue_frames=3, queue_bytes=6_000_000), 12.34, 99.5, 52.1
    )
    assert line == (
        "acqd run running     12.3 s  1234 frames (1200 stored)    99.5 fps     52.1 MB/s  drops 2  queue 3 (6.0 MB)"
    )
    out = io.StringIO()
    progress = ProgressLine(out)
    progress.update(status(frames_delivered=1, bytes_read=10))
    progress.close()
    progress.close()
    assert out.getvalue().startswith(CLEAR + "acqd run running")
    assert out.getvalue().endswith(CLEAR)
    assert out.getvalue().count(CLEAR) == 2


def test_the_result_line_says_how_the_run_ended() -> None:
    summary = {
        "outcome": "finished",
        "stored": 8,
        "delivered": 10,
        "store": "/d/s.zarr",
        "duration_s": 2.0,
        "mb_per_s": 4.0,
        "dropped": {"queue_full": 2, "aborted": 0},
        "errors": [],
        "balanced": True,
        "store_finalized": True,
    }
    assert result_line(summary) == (
        "acqd run: finished: 8 of 10 frames stored in /d/s.zarr (2.0 s, 4.0 MB/s); dropped 2 queue_full"
    )
    assert succeeded(summary)
    failed = {**summary, "outcome": "failed", "errors": ["camera 'a': lost", "x"], "store_finalized": False}
    assert result_line(failed).endswith("; error: camera 'a': lost (+1 more)")
    assert not succeeded(failed)
    assert not succeeded({**summary, "balanced": False})
