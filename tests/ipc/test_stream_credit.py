"""Credit (flow control): the worker's window bounds the frames and bytes in flight; consuming frames reopens it."""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import pytest

from daemon.errors import StreamClosedError
from daemon.ipc.frame_receiver import FrameReceiver
from daemon.ipc.frame_sender import FrameSender

from .stream_helpers import make_frame, take, wait_until


def test_window_in_frames_limits_what_is_sent(
    make_sender: Callable[..., FrameSender], make_receiver: Callable[..., FrameReceiver]
) -> None:
    sender = make_sender()
    receiver = make_receiver(sender.endpoint, window_frames=4)
    receiver.connect()
    for i in range(10):
        assert sender.offer(make_frame(i), "k") is None
    wait_until(lambda: sender.stats().frames_sent == 4, what="four frames sent")
    time.sleep(0.2)  # more time does not let more through
    stats = sender.stats()
    assert (stats.frames_sent, stats.queued_frames, stats.credit_frames) == (4, 6, 0)
    assert stats.balance.balanced

    held = [take(receiver) for _ in range(4)]
    for item in held:  # a quarter window (one frame) is given back at a time
        receiver.appended(item)
    wait_until(lambda: sender.stats().frames_sent == 8, what="four more frames sent")
    assert receiver.stats().over_credit == 0


def test_window_in_bytes_limits_what_is_sent(
    make_sender: Callable[..., FrameSender], make_receiver: Callable[..., FrameReceiver]
) -> None:
    frame_bytes = 64 * 64 * 2
    sender = make_sender()
    receiver = make_receiver(sender.endpoint, window_frames=100, window_bytes=3 * frame_bytes)
    receiver.connect()
    for i in range(10):
        sender.offer(make_frame(i, (64, 64), np.uint16), "k")
    wait_until(lambda: sender.stats().frames_sent == 3, what="three frames sent")
    time.sleep(0.2)
    assert sender.stats().frames_sent == 3
    assert sender.stats().unacked_bytes == 3 * frame_bytes


def test_a_frame_larger_than_the_byte_window_still_flows_one_at_a_time(
    make_sender: Callable[..., FrameSender], make_receiver: Callable[..., FrameReceiver]
) -> None:
    sender = make_sender()
    receiver = make_receiver(sender.endpoint, window_frames=100, window_bytes=1000)
    receiver.connect()
    for i in range(3):
        sender.offer(make_frame(i, (100, 100), np.uint8), "k")  # 10 000 bytes each
    wait_until(lambda: sender.stats().frames_sent == 1, what="first frame sent")
    time.sleep(0.2)
    assert sender.stats().frames_sent == 1
    receiver.appended(take(receiver))
    wait_until(lambda: sender.stats().frames_sent == 2, what="second frame sent")


def test_a_worker_that_defers_its_grant_gets_no_frame_until_it_grants(
    make_sender: Callable[..., FrameSender], make_receiver: Callable[..., FrameReceiver]
) -> None:
    sender = make_sender(liveness_timeout_s=0.3)
    receiver = make_receiver(sender.endpoint, window_frames=4)
    receiver.connect(grant=False)  # e.g. its store is still being prepared
    assert sender.wait_for_worker(1.0) is not None
    for i in range(6):
        assert sender.offer(make_frame(i), "k") is None
    assert not sender.wait_until_ready(0.6)  # twice the liveness timeout: heartbeats kept the link alive
    stats = sender.stats()
    assert (stats.state.value, stats.frames_sent, stats.queued_frames) == ("streaming", 0, 6)
    assert receiver.recv(timeout_s=0) is None

    receiver.grant()
    receiver.grant()  # idempotent: the window is granted once
    assert sender.wait_until_ready(5.0)
    assert [take(receiver).header.frame_id for _ in range(4)] == [0, 1, 2, 3]
    time.sleep(0.2)
    assert sender.stats().frames_sent == 4  # the window, not twice it


def test_a_worker_that_ends_before_granting_is_not_ready_and_its_reason_is_kept(
    make_sender: Callable[..., FrameSender], make_receiver: Callable[..., FrameReceiver]
) -> None:
    sender = make_sender()
    receiver = make_receiver(sender.endpoint)
    receiver.connect(grant=False)
    receiver.finish({"error": "store_path /x is not writable"})
    assert not sender.wait_until_ready(5.0)
    stats = sender.stats()
    assert (stats.state.value, stats.lost_cause) == ("worker_lost", "worker_finished_early")
    assert sender.lost_summary == {"error": "store_path /x is not writable"}


def test_grant_before_connect_is_refused(make_receiver: Callable[..., FrameReceiver]) -> None:
    receiver = make_receiver("tcp://127.0.0.1:1")
    with pytest.raises(StreamClosedError, match="not connected"):
        receiver.grant()
