"""LOST reports: frames missing on the link or refused by storage are named by seq, counted, and give credit back."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import zmq

from daemon.ipc.frame_receiver import FrameReceiver
from daemon.ipc.frame_sender import FrameSender
from daemon.ipc.header import FrameHeader
from daemon.ipc.messages import Credit, End, Lost, Stored, Welcome, encode_control
from daemon.ipc.received_frame import EndOfStream, ReceivedFrame

from .stream_helpers import (
    FakeSender,
    control_messages_until,
    fake_worker,
    make_frame,
    recv_frame_parts,
    take,
    wait_until,
)


def test_receiver_reports_sequence_gaps_as_lost_in_transit(
    make_receiver: Callable[..., FrameReceiver], fake_sender: FakeSender
) -> None:
    receiver = make_receiver(fake_sender.endpoint, window_frames=8)
    fake_sender.answer_hello(encode_control(Welcome("run", {}, 1.0, 5.0)))
    receiver.connect()
    frame = make_frame(0)
    header = FrameHeader.for_frame(frame, run_id="run", key="k", seq=0)
    for seq in (0, 2):  # seq 1 never arrives
        fake_sender.send(replace(header, seq=seq, frame_id=seq).encode(), frame.pixels)
    fake_sender.send(encode_control(End(frames=5, next_seq=5)))  # nor do 3 and 4

    items = [receiver.recv(timeout_s=5.0) for _ in range(3)]
    assert [i.seq for i in items if isinstance(i, ReceivedFrame)] == [0, 2]
    assert items[2] == EndOfStream(5, 5)
    for item in items[:2]:
        assert isinstance(item, ReceivedFrame)
        receiver.appended(item)
    receiver.stored("k", 2)
    got = control_messages_until(fake_sender.router, lambda got: Stored(5) in got)
    assert Lost(1, 1, "transit_gap") in got
    assert Lost(3, 2, "transit_gap") in got
    stats = receiver.stats()
    assert (stats.frames_received, stats.frames_missing, stats.stored_next_seq) == (2, 3, 5)


def test_receiver_reports_frames_storage_rejected(
    make_sender: Callable[..., FrameSender], make_receiver: Callable[..., FrameReceiver]
) -> None:
    sender = make_sender()
    receiver = make_receiver(sender.endpoint, window_frames=2)
    receiver.connect()
    for i in range(4):
        sender.offer(make_frame(i), "k")
    appended = 0
    for i in range(4):
        item = take(receiver)
        if i == 1:
            receiver.rejected(item, "unknown_key")  # its credit comes back through the sender's books
        else:
            receiver.appended(item)
            appended += 1
            receiver.stored("k", appended)
    wait_until(lambda: sender.stats().frames_stored == 3, what="three stored")
    stats = sender.stats()
    assert [(f.frame_id, f.seq) for f in stats.lost] == [(1, 1)]
    assert (stats.balance.dropped.worker_lost, stats.balance.in_flight) == (1, 0)
    assert stats.balance.balanced
    assert receiver.stats().frames_rejected == 1


def test_sender_counts_reported_frames_lost_and_restores_their_credit(
    make_sender: Callable[..., FrameSender], raw_socket: Callable[[int], zmq.Socket[bytes]]
) -> None:
    sender = make_sender(liveness_timeout_s=5.0)
    worker = fake_worker(raw_socket(zmq.DEALER), sender.endpoint)
    frame_bytes = make_frame(0).nbytes
    worker.send(encode_control(Credit(3, 3 * frame_bytes)))
    for i in range(5):
        sender.offer(make_frame(i), "k")
    for _ in range(3):
        recv_frame_parts(worker)
    wait_until(lambda: sender.stats().credit_frames == 0, what="credit used")
    worker.send(encode_control(Lost(1, 1, "transit_gap")))
    worker.send(encode_control(Stored(3)))
    wait_until(lambda: sender.stats().frames_stored == 2, what="two stored")
    head, _pixels = recv_frame_parts(worker)  # the lost frame's credit let one more frame out
    assert FrameHeader.decode(head).seq == 3
    stats = sender.stats()
    assert [(f.frame_id, f.seq) for f in stats.lost] == [(1, 1)]
    assert (stats.frames_sent, stats.unacked_frames, stats.queued_frames) == (4, 1, 1)
    assert stats.balance.balanced
