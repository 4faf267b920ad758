"""Control messages of the frame stream: round trips, the version check, and refusal of malformed bodies."""

from __future__ import annotations

import pytest

from daemon.errors import ConfigError, ProtocolError
from daemon.ipc.messages import (
    ControlMessage,
    Credit,
    End,
    Final,
    Heartbeat,
    Hello,
    Lost,
    Refuse,
    Stored,
    Welcome,
    decode_control,
    encode_control,
)
from daemon.ipc.wire import MAGIC, PREFIX, PROTOCOL_VERSION, MessageKind, encode_prefix

from .stream_helpers import with_version

MESSAGES: list[ControlMessage] = [
    Hello("worker-ü", 1234),
    Hello("w", None),
    Welcome("run-1", {"arrays": [{"key": "a", "dtype": "uint16"}], "nested": {"x": 1.5}}, 0.5, 5.0),
    Refuse("busy"),
    Credit(64, 256 << 20),
    Stored(0),
    Stored(2**40),
    Lost(10, 3, "transit_gap"),
    Heartbeat(),
    End(100, 100),
    Final(100, 100, {"bytes_written": 12345, "ok": True}),
]


@pytest.mark.parametrize("message", MESSAGES, ids=lambda m: type(m).__name__)
def test_round_trip(message: ControlMessage) -> None:
    encoded = encode_control(message)
    assert encoded[: PREFIX.size] == PREFIX.pack(MAGIC, PROTOCOL_VERSION, message.KIND)
    assert decode_control(encoded) == message


def test_other_version_is_refused_naming_both_versions() -> None:
    encoded = with_version(encode_control(Hello("w")), 7)
    with pytest.raises(
        ProtocolError, match=rf"version 7 is not supported; this side speaks version {PROTOCOL_VERSION}"
    ):
        decode_control(encoded)


def test_refuse_of_any_version_is_still_readable() -> None:
    encoded = with_version(encode_control(Refuse("protocol version 1 is not supported", 9)), 9)
    assert decode_control(encoded) == Refuse("protocol version 1 is not supported", 9)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (encode_prefix(MessageKind.CREDIT) + b"{not json", "not UTF-8 JSON"),
        (encode_prefix(MessageKind.CREDIT) + b"\xff\xfe", "not UTF-8 JSON"),
        (encode_prefix(MessageKind.CREDIT) + b"[1, 2]", "must be a JSON object"),
        (encode_prefix(MessageKind.CREDIT) + b'{"frames": 1}', r"lacks field\(s\) \['nbytes'\]"),
        (encode_prefix(MessageKind.CREDIT) + b'{"frames": -1, "nbytes": 5}', "frames must be an integer >= 0"),
        (encode_prefix(MessageKind.CREDIT) + b'{"frames": true, "nbytes": 5}', "frames must be an integer"),
        (
            encode_prefix(MessageKind.WELCOME) + b'{"run_id": "r", "config": [], "heartbeat_interval_s": 1, '
            b'"liveness_timeout_s": 3}',
            "config must be a JSON object",
        ),
        (encode_prefix(MessageKind.FRAME) + b"{}", "FRAME message is not a control message"),
        (b"AQ", "starts with 4 bytes"),
        (encode_prefix(MessageKind.FINAL) + b"[" * 100_000, "not UTF-8 JSON"),
        (encode_prefix(MessageKind.FINAL) + b" " * (4 << 20), "control messages are at most"),
    ],
)
def test_malformed_bodies_raise_protocol_error(data: bytes, message: str) -> None:
    with pytest.raises(ProtocolError, match=message):
        decode_control(data)


def test_unknown_fields_are_ignored_for_forward_compatibility() -> None:
    data = encode_prefix(MessageKind.STORED) + b'{"next_seq": 5, "extra": [1]}'
    assert decode_control(data) == Stored(5)


@pytest.mark.parametrize(
    ("make", "field"),
    [
        (lambda: Hello(""), "worker_id"),
        (lambda: Welcome("r", {}, 0.0, 1.0), "heartbeat_interval_s"),
        (lambda: Welcome("r", {}, 1.0, float("inf")), "liveness_timeout_s"),
        (lambda: Lost(0, 0, "x"), "count"),
        (lambda: Final(0, 0, {1: 2}), "summary"),  # type: ignore[dict-item]
    ],
)
def test_invalid_values_name_the_field(make: object, field: str) -> None:
    with pytest.raises(ConfigError, match=rf"^{field} must be"):
        make()  # type: ignore[operator]


def test_unserialisable_body_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="JSON-serialisable"):
        encode_control(Final(0, 0, {"x": object()}))
