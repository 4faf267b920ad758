"""Junk on the link (malformed, wrong part count, strangers, impossible acks) is counted and ignored, never a crash."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import numpy as np
import zmq

from daemon.ipc.frame_receiver import FrameReceiver
from daemon.ipc.frame_sender import FrameSender
from daemon.ipc.header import FrameHeader
from daemon.ipc.messages import Credit, End, Hello, Lost, Stored, Welcome, encode_control
from daemon.ipc.stream_status import SenderState
from daemon.ipc.wire import MessageKind, encode_prefix

from .stream_helpers import (
    FakeSender,
    control_messages_until,
    fake_worker,
    make_frame,
    recv_frame_parts,
    take,
    wait_until,
)


def test_sender_counts_junk_and_keeps_streaming(
    make_sender: Callable[..., FrameSender], raw_socket: Callable[[int], zmq.Socket[bytes]]
) -> None:
    sender = make_sender(liveness_timeout_s=5.0)
    worker = fake_worker(raw_socket(zmq.DEALER), sender.endpoint)
    stranger = raw_socket(zmq.DEALER)
    stranger.connect(sender.endpoint)

    worker.send_multipart([b"a", b"b"])  # part count
    worker.send(b"XX\x01\x04{}")  # magic
    worker.send(b"AQ\x01\xee{}")  # kind
    worker.send(encode_prefix(MessageKind.CREDIT) + b"{oops")  # JSON
    worker.send(make_frame(0).pixels.tobytes())  # raw bytes
    worker.send(encode_control(Stored(99)))  # ack beyond what was sent
    worker.send(encode_control(Welcome("x", {}, 1.0, 3.0)))  # a kind the sender never takes
    worker.send(encode_control(Hello("raw")))  # HELLO again
    stranger.send(encode_control(Credit(10, 1 << 20)))  # never said HELLO
    stranger.send(b"AQ" + bytes(8 << 20))  # too big for a control message: ZeroMQ drops it (and the stranger)
    expected = {
        "part_count": 1,
        "malformed": 4,
        "stored_beyond_sent": 1,
        "unexpected_kind": 1,
        "duplicate_hello": 1,
        "unknown_peer": 1,
    }
    wait_until(lambda: dict(sender.stats().junk) == expected, what=f"junk counted as {expected}")

    worker.send(encode_control(Credit(1, 1 << 20)))
    sender.offer(make_frame(5), "k")
    head, _pixels = recv_frame_parts(worker)
    assert FrameHeader.decode(head).frame_id == 5
    stats = sender.stats()
    assert stats.state is SenderState.STREAMING
    assert (stats.frames_sent, stats.credit_frames) == (1, 0)  # the stranger's credit was not taken


def test_receiver_counts_junk_reports_broken_frames_lost_and_keeps_receiving(
    make_receiver: Callable[..., FrameReceiver], fake_sender: FakeSender
) -> None:
    receiver = make_receiver(fake_sender.endpoint, window_frames=4)
    fake_sender.answer_hello(encode_control(Welcome("run", {}, 1.0, 5.0)))
    receiver.connect()
    send = fake_sender.send
    frame = make_frame(0, (4, 4), np.uint16)
    good = FrameHeader.for_frame(frame, run_id="run", key="k", seq=0)

    send(b"a", b"b", b"c", b"d")  # part count
    send(b"XX\x01\x05", b"")  # magic
    send(replace(good, run_id="other").encode(), frame.pixels)  # another run
    send(good.encode(), frame.pixels[:2])  # pixels shorter than the header says
    send(good.encode(), frame.pixels)  # seq 0 again: a duplicate
    send(replace(good, seq=1000).encode(), frame.pixels)  # beyond any window
    send(encode_control(Hello("?")))  # a kind a worker never takes
    send(encode_control(End(10**12, 10**12)))  # an END beyond any window
    send(replace(good, seq=1, frame_id=1).encode(), frame.pixels)  # fine

    item = take(receiver)
    assert (item.seq, item.header.frame_id) == (1, 1)
    stats = receiver.stats()
    assert dict(stats.junk) == {"part_count": 1, "malformed": 6, "unexpected_kind": 1}
    assert (stats.frames_received, stats.frames_missing, stats.end_received) == (1, 1, False)

    receiver.appended(item)
    receiver.stored("k", 1)
    wanted = [Stored(2), Credit(1, frame.nbytes)]
    got = control_messages_until(fake_sender.router, lambda got: all(w in got for w in wanted))
    first_stored = next(i for i, message in enumerate(got) if isinstance(message, Stored))
    assert got.index(Lost(0, 1, "malformed_frame")) < first_stored
    assert not any(isinstance(m, Credit) and m.frames > 1 for m in got[1:])  # the lost frame's credit is not returned
