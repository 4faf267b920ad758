"""The worker's side of the frame stream's handshake: after HELLO, wait for the sender's WELCOME (or REFUSE).

The sender's side (welcome the first worker of our protocol version, refuse the others) is
:meth:`daemon.ipc.frame_sender.FrameSender._on_hello`.
"""

from __future__ import annotations

import time

import zmq

from daemon.errors import PeerLost, ProtocolError
from daemon.ipc.accounting import ThrottledCounter
from daemon.ipc.messages import Refuse, Welcome, decode_control
from daemon.ipc.wire import MessageKind, check_version, decode_prefix


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
