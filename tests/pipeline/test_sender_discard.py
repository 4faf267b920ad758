"""``FrameSender.discard_queued`` (the abort path): queued frames leave the books as ``aborted``, never lost, and
the frames already sent are still stored and the stream finishes."""

from __future__ import annotations

import threading

import numpy as np

from daemon.ipc.accounting import DropReason
from daemon.ipc.frame import Frame
from daemon.ipc.frame_receiver import FrameReceiver
from daemon.ipc.frame_sender import FrameSender
from daemon.ipc.received_frame import EndOfStream, ReceivedFrame
from daemon.ipc.stream_settings import ReceiverSettings, SenderSettings
from daemon.ipc.stream_status import FinishResult, SenderState

from .support import wait_until


def frame(frame_id: int) -> Frame:
    return Frame(np.full((4, 8), frame_id, dtype=np.uint16), frame_id, host_time_ns=frame_id)


def test_discarded_frames_are_counted_aborted_and_the_rest_finishes() -> None:
    sender = FrameSender(SenderSettings("tcp://127.0.0.1:0", "run-discard", heartbeat_interval_s=0.05))
    receiver = FrameReceiver(ReceiverSettings(sender.endpoint, "w", window_frames=2, connect_timeout_s=5.0))
    try:
        receiver.connect()
        for i in range(6):
            assert sender.offer(frame(i), "a" if i % 2 else "b") is None
        wait_until(lambda: sender.stats().frames_sent == 2, what="two frames sent (the window)")
        assert sender.discard_queued() == [(2, "b"), (3, "a"), (4, "b"), (5, "a")]
        assert sender.discard_queued() == []
        stats = sender.stats()
        assert (stats.queued_frames, stats.balance.dropped[DropReason.ABORTED], stats.lost) == (0, 4, ())
        assert stats.balance.balanced

        results: list[FinishResult] = []
        finisher = threading.Thread(target=lambda: results.append(sender.finish(5.0)))
        finisher.start()
        for _ in range(2):  # the worker stores what it was sent
            item = receiver.recv(5.0)
            assert isinstance(item, ReceivedFrame)
            receiver.appended(item)
            receiver.stored(item.key, 1)
        assert isinstance(receiver.recv(5.0), EndOfStream)
        receiver.finish({"frames": 2})
        finisher.join(10)
        assert [r.state for r in results] == [SenderState.FINISHED]
        final = results[0].stats.balance
        assert (final.delivered, final.stored, final.in_flight, final.dropped.total) == (6, 2, 0, 4)
    finally:
        receiver.close()
        sender.close()
