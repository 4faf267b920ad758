"""The envelope every frame-stream message starts with: magic, protocol version, message kind.

Design notes:
- Every message's first ZeroMQ part begins with the same 4-byte prefix ``b"AQ" | version (u8) | kind (u8)``; the
  rest of that part is the body (a binary :class:`~daemon.ipc.header.FrameHeader` for FRAME, UTF-8 JSON for the
  control messages of :mod:`daemon.ipc.messages`). FRAME messages have a second part: the raw pixel buffer.
- The prefix layout is frozen across versions, so a peer can always read the version and the kind and refuse a
  version it does not speak with a clear :class:`~daemon.errors.ProtocolError` instead of misreading bytes.
"""

from __future__ import annotations

import enum
import struct

from daemon.errors import ProtocolError

PROTOCOL_VERSION = 1
MAGIC = b"AQ"
PREFIX = struct.Struct("<2sBB")

Buffer = bytes | bytearray | memoryview


class MessageKind(enum.IntEnum):
    """What a frame-stream message is; see :mod:`daemon.ipc.messages` for the control bodies."""

    HELLO = 1  # worker -> sender: version (prefix) and worker id
    WELCOME = 2  # sender -> worker: run id, opaque config JSON, heartbeat timing
    REFUSE = 3  # either way: the peer will not talk (wrong version, busy, ...)
    CREDIT = 4  # worker -> sender: frames/bytes it can take on top of what it holds
    FRAME = 5  # sender -> worker: header + pixel buffer
    STORED = 6  # worker -> sender: every sequence number below ``next_seq`` is resolved
    LOST = 7  # worker -> sender: sequence numbers it will never store
    HEARTBEAT = 8  # either way, when nothing else was sent for a heartbeat interval
    END = 9  # sender -> worker: no more frames; the sender's totals
    FINAL = 10  # worker -> sender: everything is stored; the worker's summary
    REGION = 11  # sender -> worker: a shared region of frames it may map (:mod:`daemon.ipc.shared_region`)
    REGION_REPLY = 12  # worker -> sender: whether it mapped that region


_KINDS = {kind.value: kind for kind in MessageKind}


def encode_prefix(kind: MessageKind, version: int = PROTOCOL_VERSION) -> bytes:
    """The 4-byte prefix of a message of ``kind``."""
    return PREFIX.pack(MAGIC, version, int(kind))


def decode_prefix(part: Buffer) -> tuple[int, MessageKind]:
    """``(version, kind)`` of a message's first part; the version is not checked here (see :func:`check_version`)."""
    if len(part) < PREFIX.size:
        raise ProtocolError(f"message is {len(part)} bytes; a frame-stream message starts with {PREFIX.size} bytes.")
    magic, version, kind = PREFIX.unpack_from(part)
    if magic != MAGIC:
        raise ProtocolError(f"message magic must be {MAGIC!r}. Got {bytes(magic)!r} instead.")
    known = _KINDS.get(kind)
    if known is None:
        accepted = ", ".join(f"{k.value} ({k.name})" for k in MessageKind)
        raise ProtocolError(f"message kind must be one of {accepted}. Got {kind} instead.")
    return version, known


def check_version(version: int) -> None:
    """Refuse any protocol version but ours."""
    if version != PROTOCOL_VERSION:
        raise ProtocolError(
            f"frame-stream protocol version {version} is not supported; this side speaks version {PROTOCOL_VERSION}."
        )


def open_message(part: Buffer, expected: MessageKind | None = None) -> MessageKind:
    """Check a message's prefix (magic, version, and ``expected`` kind if given) and return its kind."""
    version, kind = decode_prefix(part)
    check_version(version)
    if expected is not None and kind is not expected:
        raise ProtocolError(f"expected a {expected.name} message. Got {kind.name} instead.")
    return kind
