"""Frames cross a real ZeroMQ link (tcp and ipc) intact, without a copy on receipt, and are acknowledged as stored."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import zmq

from daemon.ipc.endpoint import PrivateIpcFolder
from daemon.ipc.frame import FrameFlags
from daemon.ipc.frame_receiver import FrameReceiver
from daemon.ipc.frame_sender import FrameSender
from daemon.ipc.stream_status import SenderState

from .conftest import RUN_ID
from .stream_helpers import ListStore, WorkerLoop, make_frame, take, wait_until


@pytest.fixture(params=["tcp", "ipc"])
def endpoint(request: pytest.FixtureRequest, ipc_folder: PrivateIpcFolder) -> str:
    return "tcp://127.0.0.1:0" if request.param == "tcp" else ipc_folder.endpoint


def test_frames_of_several_keys_arrive_intact_and_are_all_stored(
    endpoint: str, make_sender: Callable[..., FrameSender], make_receiver: Callable[..., FrameReceiver]
) -> None:
    sender = make_sender(endpoint, config={"arrays": ["a", "b"]})
    receiver = make_receiver(sender.endpoint, window_frames=8)
    welcome = receiver.connect()
    assert (welcome.run_id, welcome.config) == (RUN_ID, {"arrays": ["a", "b"]})
    worker = WorkerLoop(receiver, ListStore(stored_every=3)).start()
    assert sender.wait_for_worker(5.0) is not None
    sent = []
    for i in range(50):
        key = "a" if i % 3 else "b"
        shape, dtype = ((6, 10), np.uint16) if key == "a" else ((4, 5, 3), np.uint8)
        frame = make_frame(i, shape, dtype, FrameFlags.AFTER_GAP if i == 7 else FrameFlags.NONE)
        assert sender.offer(frame, key) is None
        sent.append((key, frame))
    result = sender.finish(timeout_s=10.0)
    worker.stop()

    assert result.state is SenderState.FINISHED
    assert result.summary == {"frames": 50}
    balance = result.stats.balance
    assert (balance.delivered, balance.stored, balance.in_flight, balance.dropped.total) == (50, 50, 0, 0)
    assert balance.balanced
    assert [r.header.frame_id for r in worker.received] == list(range(50))
    assert [r.seq for r in worker.received] == list(range(50))
    for (key, frame), got in zip(sent, worker.received, strict=True):
        assert got.key == key
        np.testing.assert_array_equal(got.pixels, frame.pixels)
        assert got.pixels.dtype == frame.pixels.dtype
        assert got.header.flags == frame.flags
        assert (got.header.host_time_ns, got.header.device_timestamp_ns) == (
            frame.host_time_ns,
            frame.device_timestamp_ns,
        )
    stats = receiver.stats()
    assert (stats.frames_received, stats.frames_appended, stats.stored_next_seq, stats.frames_held) == (50, 50, 50, 0)
    assert stats.end_received
    assert stats.final_sent


def test_received_pixels_are_a_read_only_view_of_the_zmq_message(
    make_sender: Callable[..., FrameSender], make_receiver: Callable[..., FrameReceiver]
) -> None:
    sender = make_sender()
    receiver = make_receiver(sender.endpoint, ring_bytes=0)  # inline: the ring's own view is tested elsewhere
    receiver.connect()
    frame = make_frame(3, (512, 512), np.uint16)
    sender.offer(frame, "k")
    item = take(receiver)
    base = item.pixels
    while isinstance(base, np.ndarray):
        base = base.base
    assert isinstance(base, memoryview)
    assert isinstance(base.obj, zmq.Frame)  # numpy wraps the message buffer itself: no copy
    assert not item.pixels.flags.writeable
    as_frame = item.to_frame()
    assert (as_frame.frame_id, as_frame.host_time_ns, as_frame.device_timestamp_ns) == (3, 1_000_003, 30)
    np.testing.assert_array_equal(as_frame.pixels, frame.pixels)


def test_stored_acks_follow_what_storage_reports(
    make_sender: Callable[..., FrameSender], make_receiver: Callable[..., FrameReceiver]
) -> None:
    sender = make_sender()
    receiver = make_receiver(sender.endpoint, window_frames=32)
    receiver.connect()
    for i in range(10):
        sender.offer(make_frame(i), "k")
    items = []
    for _ in range(10):
        item = take(receiver)
        receiver.appended(item)
        items.append(item)
    wait_until(lambda: sender.stats().unacked_frames == 10, what="all ten sent")
    assert sender.stats().frames_stored == 0  # appended is not stored

    receiver.stored("k", 4)
    wait_until(lambda: sender.stats().frames_stored == 4, what="stored ack of 4")
    stats = sender.stats()
    assert (stats.unacked_frames, stats.bytes_stored, stats.balance.in_flight) == (6, 4 * items[0].nbytes, 6)
    assert stats.balance.balanced

    receiver.stored("k", 10)
    wait_until(lambda: sender.stats().frames_stored == 10, what="stored ack of 10")
    assert sender.stats().unacked_frames == 0
