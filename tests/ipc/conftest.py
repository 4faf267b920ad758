"""Fixtures of the frame-stream tests: senders, receivers and raw ZeroMQ sockets, all closed at teardown."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import zmq

from daemon.ipc.endpoint import PrivateIpcFolder
from daemon.ipc.frame_receiver import FrameReceiver
from daemon.ipc.frame_sender import FrameSender
from daemon.ipc.stream_settings import ReceiverSettings, SenderSettings

from .stream_helpers import FakeSender

RUN_ID = "run-test"


@pytest.fixture
def ipc_folder() -> Iterator[PrivateIpcFolder]:
    folder = PrivateIpcFolder()
    yield folder
    folder.close()


@pytest.fixture
def make_sender() -> Iterator[Callable[..., FrameSender]]:
    made: list[FrameSender] = []

    def make(endpoint: str = "tcp://127.0.0.1:0", **settings: Any) -> FrameSender:
        settings.setdefault("run_id", RUN_ID)
        settings.setdefault("heartbeat_interval_s", 0.05)
        settings.setdefault("liveness_timeout_s", 1.0)
        sender = FrameSender(SenderSettings(endpoint=endpoint, **settings))
        made.append(sender)
        return sender

    yield make
    for sender in made:
        sender.close()


@pytest.fixture
def make_receiver() -> Iterator[Callable[..., FrameReceiver]]:
    made: list[FrameReceiver] = []

    def make(endpoint: str, worker_id: str = "worker-1", **settings: Any) -> FrameReceiver:
        settings.setdefault("connect_timeout_s", 5.0)
        receiver = FrameReceiver(ReceiverSettings(endpoint=endpoint, worker_id=worker_id, **settings))
        made.append(receiver)
        return receiver

    yield make
    for receiver in made:
        receiver.close()


@pytest.fixture
def raw_socket() -> Iterator[Callable[[int], zmq.Socket[bytes]]]:
    """Raw ZeroMQ sockets (to play a misbehaving peer); closed and their context terminated at teardown."""
    context: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    sockets: list[zmq.Socket[bytes]] = []

    def make(kind: int) -> zmq.Socket[bytes]:
        socket = context.socket(kind)
        socket.setsockopt(zmq.LINGER, 0)
        socket.setsockopt(zmq.RCVTIMEO, 5000)
        sockets.append(socket)
        return socket

    yield make
    for socket in sockets:
        socket.close(linger=0)
    context.term()


@pytest.fixture
def fake_sender(raw_socket: Callable[[int], zmq.Socket[bytes]]) -> FakeSender:
    return FakeSender(raw_socket(zmq.ROUTER))
