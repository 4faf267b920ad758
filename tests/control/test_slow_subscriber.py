"""A subscriber that never reads does not slow the publisher: previews beyond the high-water mark are dropped."""

from __future__ import annotations

import time

import numpy as np

from daemon.ipc.events import EventPublisher, Events, Topic

PREVIEWS = 10_000


def test_publisher_does_not_wait_for_a_subscriber_that_never_reads() -> None:
    frame = np.random.default_rng(0).integers(0, 4096, size=(256, 256), dtype=np.uint16)
    with EventPublisher("tcp://127.0.0.1:*", sndhwm=16, preview_max_hz=None) as pub:
        with Events(pub.endpoint, timeout_s=0.05, rcvhwm=16) as stalled:
            deadline = time.monotonic() + 5
            while stalled.recv() is None:  # joined; from now on it reads nothing until the flood is over
                assert time.monotonic() < deadline
                pub.publish(Topic.STATE, {"joining": True})
            started = time.monotonic()
            for frame_id in range(PREVIEWS):
                pub.preview("cam", frame, run_id="r", frame_id=frame_id)
            elapsed = time.monotonic() - started
            backlog = 0
            while stalled.recv(timeout_s=0.3) is not None:
                backlog += 1
        assert pub.counts()["preview"] == PREVIEWS
        with Events(pub.endpoint, topics=[Topic.STATE], timeout_s=0.05) as fresh:
            deadline = time.monotonic() + 5
            while fresh.recv() is None:
                assert time.monotonic() < deadline, "the publisher is wedged"
                pub.publish(Topic.STATE, {"after": True})
    assert elapsed < 10, f"publishing {PREVIEWS} previews took {elapsed:.1f} s"
    assert backlog < PREVIEWS / 10, f"{backlog} previews were queued for the stalled subscriber"
    print(f"{PREVIEWS} previews of 256x256 uint16 in {elapsed:.2f} s; stalled subscriber got {backlog}")
