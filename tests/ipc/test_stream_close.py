"""Closing: idempotent, bounded in time, and leaves no socket, thread or ipc folder behind."""

from __future__ import annotations

import stat
import threading
from collections.abc import Iterator

import pytest
import zmq

from daemon.errors import ConfigError, StreamClosedError
from daemon.ipc.endpoint import PrivateIpcFolder
from daemon.ipc.frame_receiver import FrameReceiver
from daemon.ipc.frame_sender import FrameSender
from daemon.ipc.stream_settings import ReceiverSettings, SenderSettings
from daemon.ipc.stream_status import SenderState

from .stream_helpers import make_frame


@pytest.fixture
def context() -> Iterator[zmq.Context[zmq.Socket[bytes]]]:
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    yield ctx
    if not ctx.closed:
        ctx.destroy(linger=0)


def term_returns(ctx: zmq.Context[zmq.Socket[bytes]], timeout_s: float = 3.0) -> bool:
    """``Context.term`` blocks while any socket of the context is open: returning proves none leaked."""
    done = threading.Event()

    def term() -> None:
        ctx.term()
        done.set()

    threading.Thread(target=term, daemon=True).start()
    return done.wait(timeout_s)


def stream_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("acqd-frame-")]


def test_closing_sender_and_receiver_twice_leaves_no_socket_or_thread(
    context: zmq.Context[zmq.Socket[bytes]], ipc_folder: PrivateIpcFolder
) -> None:
    sender = FrameSender(SenderSettings(ipc_folder.endpoint, "run", heartbeat_interval_s=0.05), context=context)
    receiver = FrameReceiver(ReceiverSettings(sender.endpoint, "w", linger_s=0.2), context=context)
    receiver.connect()
    sender.offer(make_frame(0), "k")
    assert receiver.recv(timeout_s=5.0) is not None
    assert len(stream_threads()) == 2
    for _ in range(2):
        receiver.close()
        sender.close()
    assert receiver.closed
    assert sender.closed
    assert stream_threads() == []
    assert term_returns(context)


def test_closing_an_unconnected_receiver_closes_its_socket(context: zmq.Context[zmq.Socket[bytes]]) -> None:
    receiver = FrameReceiver(ReceiverSettings("tcp://127.0.0.1:1", "w"), context=context)
    receiver.close()
    receiver.close()
    assert term_returns(context)
    with pytest.raises(StreamClosedError):
        receiver.connect()


def test_components_with_their_own_context_terminate_it() -> None:
    sender = FrameSender(SenderSettings("tcp://127.0.0.1:0", "run"))
    receiver = FrameReceiver(ReceiverSettings(sender.endpoint, "w", linger_s=0.2))
    receiver.connect()
    receiver.close()
    sender.close()
    assert sender._io.context_closed
    assert receiver._io.context_closed
    assert stream_threads() == []


def test_close_before_the_end_counts_in_flight_frames_lost() -> None:
    sender = FrameSender(SenderSettings("tcp://127.0.0.1:0", "run"))
    for i in range(3):
        sender.offer(make_frame(i), "k")
    sender.close()
    stats = sender.stats()
    assert (stats.state, stats.lost_cause, stats.balance.dropped.worker_lost, stats.balance.in_flight) == (
        SenderState.WORKER_LOST,
        "closed",
        3,
        0,
    )
    with pytest.raises(StreamClosedError):
        sender.offer(make_frame(3), "k")


def test_binding_a_taken_endpoint_is_a_config_error_and_leaks_nothing(
    context: zmq.Context[zmq.Socket[bytes]],
) -> None:
    first = FrameSender(SenderSettings("tcp://127.0.0.1:0", "run"), context=context)
    with pytest.raises(ConfigError, match=rf"endpoint '{first.endpoint}' cannot be bound"):
        FrameSender(SenderSettings(first.endpoint, "run"), context=context)
    first.close()
    assert term_returns(context)


def test_private_ipc_folder_is_private_and_removed_once() -> None:
    folder = PrivateIpcFolder()
    assert stat.S_IMODE(folder.path.stat().st_mode) == 0o700
    assert folder.endpoint == f"ipc://{folder.path}/frames.sock"
    sender = FrameSender(SenderSettings(folder.endpoint, "run"))
    assert (folder.path / "frames.sock").exists()
    sender.close()
    folder.close()
    folder.close()
    assert not folder.path.exists()
