"""A slow worker never blocks the camera: the byte-bounded queue drops (queue_full) and counts exactly."""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import pytest

from daemon.errors import ConfigError, StreamClosedError
from daemon.ipc.accounting import DropReason
from daemon.ipc.frame import Frame
from daemon.ipc.frame_receiver import FrameReceiver
from daemon.ipc.frame_sender import FrameSender
from daemon.ipc.stream_status import SenderState

from .stream_helpers import WorkerLoop, make_frame

SHAPE = (128, 128)
FRAME_BYTES = 128 * 128 * 2


def test_slow_worker_makes_the_queue_drop_and_offer_never_blocks(
    make_sender: Callable[..., FrameSender], make_receiver: Callable[..., FrameReceiver]
) -> None:
    sender = make_sender(queue_max_bytes=8 * FRAME_BYTES)
    receiver = make_receiver(sender.endpoint, window_frames=2)
    receiver.connect()
    worker = WorkerLoop(receiver, delay_s=0.02).start()  # ~50 frames/s
    assert sender.wait_for_worker(5.0) is not None

    durations = []
    reasons: list[DropReason | None] = []
    for i in range(400):  # offered as fast as the camera thread can: far above 50 frames/s
        started = time.perf_counter()
        reasons.append(sender.offer(make_frame(i, SHAPE), "k"))
        durations.append(time.perf_counter() - started)
    stats = sender.stats()
    assert max(durations) < 0.05  # the worker's 20 ms per frame never reaches the camera thread
    assert stats.queued_bytes <= 8 * FRAME_BYTES
    assert stats.queue_peak_bytes == 8 * FRAME_BYTES
    dropped = reasons.count(DropReason.QUEUE_FULL)
    assert dropped > 300
    assert reasons.count(None) + dropped == 400
    assert stats.balance.dropped.queue_full == dropped
    assert stats.balance.balanced

    result = sender.finish(timeout_s=20.0)
    worker.stop()
    balance = result.stats.balance
    assert result.state is SenderState.FINISHED
    assert (balance.delivered, balance.stored, balance.dropped.queue_full, balance.in_flight) == (
        400,
        400 - dropped,
        dropped,
        0,
    )
    kept = [i for i, reason in enumerate(reasons) if reason is None]
    assert [r.header.frame_id for r in worker.received] == kept


def test_block_mode_waits_instead_of_dropping(
    make_sender: Callable[..., FrameSender], make_receiver: Callable[..., FrameReceiver]
) -> None:
    sender = make_sender(queue_max_bytes=2 * FRAME_BYTES, queue_mode="block", block_timeout_s=10.0)
    receiver = make_receiver(sender.endpoint, window_frames=2)
    receiver.connect()
    worker = WorkerLoop(receiver, delay_s=0.005).start()
    reasons = [sender.offer(make_frame(i, SHAPE), "k") for i in range(60)]
    assert reasons == [None] * 60
    result = sender.finish(timeout_s=20.0)
    worker.stop()
    assert (result.stats.balance.stored, result.stats.balance.dropped.total) == (60, 0)


def test_pipeline_drops_join_the_same_balance(make_sender: Callable[..., FrameSender]) -> None:
    sender = make_sender(queue_max_bytes=FRAME_BYTES)
    sender.record_drop(DropReason.CAMERA_GAP, 3)
    sender.record_drop(DropReason.INCOMPLETE)
    sender.offer(make_frame(0, SHAPE), "k")
    assert sender.offer(make_frame(1, SHAPE), "k") is DropReason.QUEUE_FULL
    balance = sender.stats().balance
    assert (balance.delivered, balance.in_flight) == (6, 1)
    assert (balance.dropped.camera_gap, balance.dropped.incomplete, balance.dropped.queue_full) == (3, 1, 1)
    assert balance.balanced


def test_offered_frames_must_fit_the_wire(make_sender: Callable[..., FrameSender]) -> None:
    sender = make_sender()
    with pytest.raises(ConfigError, match="C-contiguous"):
        sender.offer(Frame(np.zeros((8, 8), np.uint8)[:, ::2], 0, 0), "k")
    with pytest.raises(ConfigError, match=r"^dtype must be a plain numeric type"):
        sender.offer(Frame(np.zeros((2, 2), "U3"), 0, 0), "k")
    with pytest.raises(ConfigError, match=r"^record_drop reason must be"):
        sender.record_drop(DropReason.QUEUE_FULL)
    assert sender.stats().balance.delivered == 0
    sender.finish(timeout_s=0.1)
    with pytest.raises(StreamClosedError):
        sender.offer(make_frame(0), "k")
