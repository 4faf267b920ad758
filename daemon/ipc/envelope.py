"""The routing envelope of a request on a ROUTER socket: read a whole multipart message, keeping a bounded number
of parts, and split ``[identity, (empty delimiter,) body...]`` into the envelope to reply with and the body.

A REQ client sends the empty delimiter, a DEALER may not: the reply goes back with the same envelope either way.
"""

from __future__ import annotations

import zmq

MAX_PARTS = 4  # identity, delimiter, body, and one more to detect extras


def recv_parts(sock: zmq.Socket[bytes]) -> tuple[list[bytes], int]:
    """Receive one whole multipart message without blocking (``zmq.Again`` when none waits); keep at most
    ``MAX_PARTS`` parts and count the ones dropped."""
    parts = [sock.recv(zmq.NOBLOCK)]
    extra = 0
    while sock.rcvmore:
        part = sock.recv()
        if len(parts) < MAX_PARTS:
            parts.append(part)
        else:
            extra += 1
    return parts, extra


def split_envelope(parts: list[bytes], extra: int = 0) -> tuple[list[bytes], bytes | None, int]:
    """``(envelope, body, count)``: ``body`` is the one part after the envelope, or None when ``count`` (the parts
    after the envelope, dropped ones included) is not 1."""
    identity, rest = parts[0], parts[1:]
    if rest and rest[0] == b"":
        envelope, body = [identity, b""], rest[1:]
    else:
        envelope, body = [identity], rest
    count = len(body) + extra
    return envelope, (body[0] if count == 1 else None), count
