"""The frame stream's handshake, both sides: the worker sends HELLO and waits for WELCOME (or REFUSE); the sender
reads the HELLO and welcomes the first worker of its protocol version, or refuses it with a reason.

:func:`await_welcome` is the worker's side; :func:`read_hello` and :func:`send_refusal` are the pieces of the
sender's (:class:`~daemon.ipc.frame_sender.FrameSender` decides whom to welcome: it knows its state).
"""

from __future__ import annotations

import time
from typing import Any

import zmq

from daemon.errors import PeerLost, ProtocolError
from daemon.ipc.accounting import ThrottledCounter
from daemon.ipc.messages import Hello, Refuse, Welcome, decode_control, encode_control
from daemon.ipc.wire import PROTOCOL_VERSION, MessageKind, check_version, decode_prefix


def await_welcome(socket: zmq.Socket[bytes], junk: ThrottledCounter, endpoint: str, timeout_s: float) -> Welcome:
    """The sender's WELCOME on ``socket`` (junk is counted and skipped); ProtocolError when the sender refuses us or
    speaks another protocol version, PeerLost when nothing came within ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while (remaining := deadline - time.monotonic()) > 0:
        if not socket.poll(int(remaining * 1000) + 1, zmq.POLLIN):
            continue
        parts = socket.recv_multipart()
        if len(parts) != 1:
            junk.count("part_count", parts=len(parts))
            continue
        try:
            version, kind = decode_prefix(parts[0])
        except ProtocolError as exc:
            junk.count("malformed", error=str(exc))
            continue
        if kind is MessageKind.REFUSE:
            refusal = decode_control(parts[0])
            reason = refusal.reason if isinstance(refusal, Refuse) else repr(refusal)
            raise ProtocolError(f"the sender refused this worker: {reason}.")
        check_version(version)
        try:
            message = decode_control(parts[0])
        except ProtocolError as exc:
            junk.count("malformed", error=str(exc))
            continue
        if isinstance(message, Welcome):
            return message
        junk.count("unexpected_kind", kind=message.KIND.name)
    raise PeerLost(f"no WELCOME from {endpoint} within {timeout_s} s (connect_timeout_s).")


def read_hello(version: int, body: bytes) -> Hello | str:
    """A worker's HELLO (``version`` from its prefix), or why it must be refused: it speaks another protocol
    version. ProtocolError when ``body`` is not a HELLO."""
    if version != PROTOCOL_VERSION:
        return f"protocol version {version} is not supported; the sender speaks {PROTOCOL_VERSION}"
    hello = decode_control(body)
    if not isinstance(hello, Hello):
        raise ProtocolError(f"expected a HELLO message. Got {hello.KIND.name} instead.")
    return hello


def send_refusal(socket: zmq.Socket[bytes], peer: bytes, reason: str, log: Any) -> None:
    """Tell the worker at ``peer`` (a ROUTER identity) why it is refused; logged, never raises."""
    log.warning("frame_stream_refused", reason=reason)
    try:
        socket.send_multipart([peer, encode_control(Refuse(reason))], flags=zmq.NOBLOCK)
    except zmq.ZMQError as exc:
        log.info("frame_stream_refusal_undelivered", error=str(exc))
