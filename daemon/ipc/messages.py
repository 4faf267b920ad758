"""The control messages of the frame stream (everything but FRAME), as versioned values with encode/decode.

Conversation (the acquisition side binds a ROUTER, each worker connects a DEALER)::

    worker                          sender
    HELLO {worker_id, pid, ring?} ->  (ring: frames in shared memory, :mod:`daemon.ipc.frame_ring`)
                              <-    WELCOME {run_id, config, heartbeat_interval_s, liveness_timeout_s}
                                    (or REFUSE {reason, version}: wrong protocol version, busy, ...)
    CREDIT {frames, nbytes, consumed_seq?} -> (initial window, then what each consumed frame gives back)
                              <-    FRAME header + pixels   (seq 0, 1, 2, ... while credit lasts)
                                    or header + b"" + ring offset (the pixels are in the worker's ring)
    LOST {first_seq, count, reason} ->   (frames it will never store: a transit gap, a rejected frame;
                                          the sender gives their credit back itself)
    STORED {next_seq}         ->    (cumulative: every seq below next_seq is stored or reported LOST)
    HEARTBEAT                 <->   (when nothing else was sent for a heartbeat interval)
                              <-    END {frames, next_seq}
    FINAL {next_seq, frames_received, summary} ->
                              <-    REGION {region_id, pid, fd, nbytes, token}  (frames in shared memory,
    REGION_REPLY {region_id, mapped, reason} ->                   :mod:`daemon.ipc.shared_region`)

Design notes:
- A control message is one ZeroMQ part: the :mod:`daemon.ipc.wire` prefix then a UTF-8 JSON object.
- Values validate themselves (``ConfigError`` naming the field); decoding turns any problem into
  :class:`~daemon.errors.ProtocolError`. Unknown JSON keys are ignored; missing ones are an error unless the field
  has a default (fields added later are optional, so peers of the same protocol version still talk).
- Control messages are at most :data:`MAX_CONTROL_BYTES`; the sender's socket refuses larger messages outright
  (``ZMQ_MAXMSGSIZE``: a worker never sends pixels).
- REFUSE is decoded whatever its version, so a worker of another version still learns why it was turned away.
- ``config`` (WELCOME) and ``summary`` (FINAL) are opaque JSON objects owned by the pipeline and the worker.
"""

from __future__ import annotations

import json
from dataclasses import MISSING, dataclass, fields
from typing import Any, ClassVar

from daemon.errors import ConfigError, ProtocolError
from daemon.ipc.checks import check_int, check_json_object, check_seconds, check_text
from daemon.ipc.wire import PREFIX, PROTOCOL_VERSION, Buffer, MessageKind, check_version, decode_prefix, encode_prefix

JsonObject = dict[str, Any]
REGION_TOKEN_BYTES = 16
MAX_REGION_ID = (1 << 63) - 1
MAX_CONTROL_BYTES = 4 << 20  # the WELCOME config and the FINAL summary are small JSON documents


class _Control:
    """Shared encode/decode of the JSON body; subclasses are frozen slotted dataclasses."""

    __slots__ = ()
    KIND: ClassVar[MessageKind]

    def body(self) -> JsonObject:
        return {f.name: getattr(self, f.name) for f in fields(self)}  # type: ignore[arg-type]

    @classmethod
    def from_body(cls, body: JsonObject) -> _Control:
        names = [f.name for f in fields(cls)]  # type: ignore[arg-type]
        required = [f.name for f in fields(cls) if f.default is MISSING]  # type: ignore[arg-type]
        missing = [n for n in required if n not in body]
        if missing:
            raise ProtocolError(f"{cls.KIND.name} message lacks field(s) {missing}. Got keys {sorted(body)} instead.")
        try:
            return cls(**{n: body[n] for n in names if n in body})
        except ConfigError as exc:
            raise ProtocolError(f"{cls.KIND.name} message is invalid: {exc}") from exc


@dataclass(frozen=True, slots=True)
class Hello(_Control):
    KIND: ClassVar[MessageKind] = MessageKind.HELLO
    worker_id: str
    pid: int | None = None
    ring: JsonObject | None = None  # a :class:`~daemon.ipc.frame_ring.RingOffer` (optional)

    def __post_init__(self) -> None:
        check_text("worker_id", self.worker_id, 1, 255)
        if self.pid is not None:
            check_int("pid", self.pid, 1)
        if self.ring is not None:
            check_json_object("ring", self.ring)


@dataclass(frozen=True, slots=True)
class Welcome(_Control):
    KIND: ClassVar[MessageKind] = MessageKind.WELCOME
    run_id: str
    config: JsonObject
    heartbeat_interval_s: float
    liveness_timeout_s: float

    def __post_init__(self) -> None:
        check_text("run_id", self.run_id, 1, 255)
        check_json_object("config", self.config)
        check_seconds("heartbeat_interval_s", self.heartbeat_interval_s)
        check_seconds("liveness_timeout_s", self.liveness_timeout_s)


@dataclass(frozen=True, slots=True)
class Refuse(_Control):
    KIND: ClassVar[MessageKind] = MessageKind.REFUSE
    reason: str
    version: int = PROTOCOL_VERSION

    def __post_init__(self) -> None:
        check_text("reason", self.reason)
        check_int("version", self.version)


@dataclass(frozen=True, slots=True)
class Credit(_Control):
    KIND: ClassVar[MessageKind] = MessageKind.CREDIT
    frames: int
    nbytes: int
    consumed_seq: int | None = None  # every frame below it was appended or rejected (frees the ring)

    def __post_init__(self) -> None:
        check_int("frames", self.frames)
        check_int("nbytes", self.nbytes)
        if self.consumed_seq is not None:
            check_int("consumed_seq", self.consumed_seq)


@dataclass(frozen=True, slots=True)
class Stored(_Control):
    KIND: ClassVar[MessageKind] = MessageKind.STORED
    next_seq: int

    def __post_init__(self) -> None:
        check_int("next_seq", self.next_seq)


@dataclass(frozen=True, slots=True)
class Lost(_Control):
    KIND: ClassVar[MessageKind] = MessageKind.LOST
    first_seq: int
    count: int
    reason: str

    def __post_init__(self) -> None:
        check_int("first_seq", self.first_seq)
        check_int("count", self.count, 1)
        check_text("reason", self.reason)


@dataclass(frozen=True, slots=True)
class Heartbeat(_Control):
    KIND: ClassVar[MessageKind] = MessageKind.HEARTBEAT


@dataclass(frozen=True, slots=True)
class End(_Control):
    KIND: ClassVar[MessageKind] = MessageKind.END
    frames: int
    next_seq: int

    def __post_init__(self) -> None:
        check_int("frames", self.frames)
        check_int("next_seq", self.next_seq)


@dataclass(frozen=True, slots=True)
class Final(_Control):
    KIND: ClassVar[MessageKind] = MessageKind.FINAL
    next_seq: int
    frames_received: int
    summary: JsonObject

    def __post_init__(self) -> None:
        check_int("next_seq", self.next_seq)
        check_int("frames_received", self.frames_received)
        check_json_object("summary", self.summary)


@dataclass(frozen=True, slots=True)
class Region(_Control):
    """A shared region the worker may map: ``/proc/<pid>/fd/<fd>``, ``nbytes`` of data, ``token`` in its header."""

    KIND: ClassVar[MessageKind] = MessageKind.REGION
    region_id: int
    pid: int
    fd: int
    nbytes: int
    token: str

    def __post_init__(self) -> None:
        check_int("region_id", self.region_id, 1, MAX_REGION_ID + 1)
        check_int("pid", self.pid, 1)
        check_int("fd", self.fd)
        check_int("nbytes", self.nbytes, 1)
        check_text("token", self.token, REGION_TOKEN_BYTES * 2, REGION_TOKEN_BYTES * 2)


@dataclass(frozen=True, slots=True)
class RegionReply(_Control):
    KIND: ClassVar[MessageKind] = MessageKind.REGION_REPLY
    region_id: int
    mapped: bool
    reason: str = ""

    def __post_init__(self) -> None:
        check_int("region_id", self.region_id, 1, MAX_REGION_ID + 1)
        if not isinstance(self.mapped, bool):
            raise ConfigError(f"mapped must be true or false. Got {self.mapped!r} instead.")
        check_text("reason", self.reason, 0)


ControlMessage = Hello | Welcome | Refuse | Credit | Stored | Lost | Heartbeat | End | Final | Region | RegionReply
_BY_KIND: dict[MessageKind, type[_Control]] = {
    cls.KIND: cls for cls in (Hello, Welcome, Refuse, Credit, Stored, Lost, Heartbeat, End, Final, Region, RegionReply)
}


def encode_control(message: ControlMessage) -> bytes:
    """One ZeroMQ part: prefix + JSON body. Raises ConfigError if the body is not JSON-serialisable."""
    try:
        body = json.dumps(message.body(), separators=(",", ":"), allow_nan=False).encode()
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{message.KIND.name} message body must be JSON-serialisable: {exc}") from exc
    return encode_prefix(message.KIND) + body


def decode_control(part: Buffer) -> ControlMessage:
    """Parse one control message; a FRAME, another version (but REFUSE) or bad JSON raise ProtocolError."""
    version, kind = decode_prefix(part)
    if kind is not MessageKind.REFUSE:
        check_version(version)
    cls = _BY_KIND.get(kind)
    if cls is None:
        raise ProtocolError(f"a {kind.name} message is not a control message.")
    if len(part) > MAX_CONTROL_BYTES:
        raise ProtocolError(
            f"{kind.name} message is {len(part)} bytes; control messages are at most {MAX_CONTROL_BYTES}."
        )
    try:
        body = json.loads(bytes(part[PREFIX.size :]))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:  # RecursionError: nesting too deep
        raise ProtocolError(f"{kind.name} message body is not UTF-8 JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise ProtocolError(f"{kind.name} message body must be a JSON object. Got {type(body).__name__} instead.")
    message = cls.from_body(body)
    assert isinstance(message, ControlMessage)
    return message
