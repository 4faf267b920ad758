"""Counted events are logged the first ten times, then at every power of ten: junk cannot flood the journal."""

from __future__ import annotations

from structlog.testing import capture_logs

from daemon.ipc.accounting import ThrottledCounter
from daemon.log import get_logger


def test_counts_everything_but_logs_only_the_first_ten_and_powers_of_ten() -> None:
    counter = ThrottledCounter(get_logger("test"), "frame_stream_junk")
    with capture_logs() as logs:
        for i in range(1000):
            counter.count("malformed" if i % 2 else "part_count", index=i)
    assert counter.total == 1000
    assert dict(counter.snapshot()) == {"part_count": 500, "malformed": 500}
    assert [entry["total"] for entry in logs] == [*range(1, 11), 100, 1000]
    assert all(entry["event"] == "frame_stream_junk" and entry["log_level"] == "warning" for entry in logs)
    assert logs[0]["reason"] == "part_count"
    assert logs[0]["index"] == 0
