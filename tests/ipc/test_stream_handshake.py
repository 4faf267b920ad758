"""HELLO/WELCOME: version mismatches and second workers are refused clearly; silence on either side is detected."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
import zmq

from daemon.errors import PeerLost, ProtocolError
from daemon.ipc.frame_receiver import FrameReceiver
from daemon.ipc.frame_sender import FrameSender
from daemon.ipc.messages import Hello, Refuse, Welcome, decode_control, encode_control
from daemon.ipc.stream_status import SenderState
from daemon.ipc.wire import PROTOCOL_VERSION

from .stream_helpers import FakeSender, fake_worker, wait_until, with_version


def test_sender_refuses_a_worker_of_another_version(
    make_sender: Callable[..., FrameSender], raw_socket: Callable[[int], zmq.Socket[bytes]]
) -> None:
    sender = make_sender()
    dealer = raw_socket(zmq.DEALER)
    dealer.connect(sender.endpoint)
    dealer.send(with_version(encode_control(Hello("old-worker")), PROTOCOL_VERSION + 1))
    reply = decode_control(dealer.recv())
    assert isinstance(reply, Refuse)
    assert f"protocol version {PROTOCOL_VERSION + 1} is not supported" in reply.reason
    assert f"speaks {PROTOCOL_VERSION}" in reply.reason
    stats = sender.stats()
    assert (stats.refused_peers, stats.state, stats.worker) == (1, SenderState.WAITING, None)


def test_receiver_raises_protocol_error_on_a_sender_of_another_version(
    make_receiver: Callable[..., FrameReceiver], fake_sender: FakeSender
) -> None:
    receiver = make_receiver(fake_sender.endpoint)
    fake_sender.answer_hello(with_version(encode_control(Welcome("r", {}, 0.1, 1.0)), PROTOCOL_VERSION + 3))
    with pytest.raises(ProtocolError, match=rf"version {PROTOCOL_VERSION + 3} is not supported"):
        receiver.connect()


def test_a_second_worker_is_refused_and_the_first_keeps_streaming(
    make_sender: Callable[..., FrameSender], make_receiver: Callable[..., FrameReceiver]
) -> None:
    sender = make_sender()
    first = make_receiver(sender.endpoint, worker_id="first")
    first.connect()
    second = make_receiver(sender.endpoint, worker_id="second")
    with pytest.raises(ProtocolError, match=r"refused this worker.*already has a worker"):
        second.connect()
    stats = sender.stats()
    assert stats.worker is not None
    assert (stats.worker.worker_id, stats.state, stats.refused_peers) == ("first", SenderState.STREAMING, 1)


def test_connect_without_a_sender_times_out_with_peer_lost(make_receiver: Callable[..., FrameReceiver]) -> None:
    receiver = make_receiver("tcp://127.0.0.1:1", connect_timeout_s=0.3)
    started = time.monotonic()
    with pytest.raises(PeerLost, match=r"no WELCOME from tcp://127.0.0.1:1 within 0.3 s"):
        receiver.connect()
    assert time.monotonic() - started < 3.0


def test_wait_for_worker_times_out_with_none(make_sender: Callable[..., FrameSender]) -> None:
    sender = make_sender()
    assert sender.wait_for_worker(0.1) is None


def test_receiver_detects_a_silent_sender(make_receiver: Callable[..., FrameReceiver], fake_sender: FakeSender) -> None:
    receiver = make_receiver(fake_sender.endpoint)
    fake_sender.answer_hello(encode_control(Welcome("r", {}, 0.05, 0.3)))  # then says nothing more
    receiver.connect()
    wait_until(lambda: receiver.stats().peer_lost, timeout_s=5.0, what="sender lost")
    with pytest.raises(PeerLost, match=r"sent nothing for 0.3 s"):
        receiver.recv(timeout_s=1.0)
    assert receiver.stats().peer_lost
    with pytest.raises(PeerLost):  # stays lost
        receiver.recv(timeout_s=0.01)


def test_sender_detects_a_silent_worker(
    make_sender: Callable[..., FrameSender], raw_socket: Callable[[int], zmq.Socket[bytes]]
) -> None:
    sender = make_sender(liveness_timeout_s=0.4, heartbeat_interval_s=0.05)
    fake_worker(raw_socket(zmq.DEALER), sender.endpoint, "mute")  # welcomed, then silent
    welcomed = time.monotonic()
    wait_until(lambda: sender.stats().state is SenderState.WORKER_LOST, timeout_s=5.0, what="worker lost")
    assert 0.3 < time.monotonic() - welcomed < 2.0
    assert sender.stats().lost_cause == "liveness_timeout"
