"""The control wire types: encode/decode round trips, fingerprints, and strict reply decoding."""

from __future__ import annotations

import json

import pytest

from daemon.errors import ProtocolError
from daemon.ipc.control import (
    PROTOCOL_VERSION,
    ErrorCode,
    Reply,
    Request,
    RequestError,
    decode_reply,
    decode_request,
    encode_reply,
    encode_request,
    request_fingerprint,
)


@pytest.mark.parametrize("request_id", ["abc", 0, -(2**53), 2**53, "x" * 128, "\u00e9t\u00e9"])
def test_request_round_trip(request_id: str | int) -> None:
    request = Request(id=request_id, command="start", args={"name": "demo", "overrides": {"a.b": [1, 2.5, None]}})
    assert decode_request(encode_request(request)) == request


def test_request_defaults() -> None:
    request = decode_request(b'{"id": "x", "command": "ping"}')
    assert (request.args, request.protocol) == ({}, PROTOCOL_VERSION)


@pytest.mark.parametrize(
    "reply",
    [
        Reply.success("a", {"run_id": "run-1"}),
        Reply.success(7, None),
        Reply.failure(None, ErrorCode.BAD_REQUEST, "not valid JSON"),
        Reply.failure("b", ErrorCode.CONFLICT, "camera in use \u2014 by run-1"),
    ],
)
def test_reply_round_trip(reply: Reply) -> None:
    data = encode_reply(reply)
    data.decode("ascii")  # replies are pure ASCII
    assert decode_reply(data) == reply


def test_reply_with_a_lone_surrogate_id_still_encodes() -> None:
    request = decode_request(b'{"id": "\\ud800", "command": "ping"}')
    assert decode_reply(encode_reply(Reply.success(request.id, 1))).id == "\ud800"


def test_unknown_error_code_is_kept_as_text() -> None:
    reply = decode_reply(b'{"id": 1, "ok": false, "error": {"code": "from_the_future", "message": "m"}}')
    assert reply.error is not None
    assert reply.error.code == "from_the_future"


@pytest.mark.parametrize(
    "data",
    [
        b"[]",
        b'{"id": 1}',
        b'{"id": 1, "ok": "yes"}',
        b'{"id": 1, "ok": false}',
        b'{"id": 1, "ok": false, "error": {"message": "m"}}',
        b'{"id": [1], "ok": true}',
        b'{"id": 1, "ok": true, "protocol": "1"}',
    ],
)
def test_malformed_replies_are_protocol_errors(data: bytes) -> None:
    with pytest.raises(ProtocolError):
        decode_reply(data)


def test_result_that_is_not_json_is_a_protocol_error() -> None:
    with pytest.raises(ProtocolError, match="not plain JSON"):
        encode_reply(Reply.success("a", {"x": float("nan")}))


def test_fingerprint_ignores_key_order_and_id_but_not_content() -> None:
    a = Request(id="1", command="start", args={"name": "demo", "overrides": {"x": 1, "y": 2}})
    b = Request(id="2", command="start", args={"overrides": {"y": 2, "x": 1}, "name": "demo"})
    c = Request(id="1", command="start", args={"name": "other"})
    assert request_fingerprint(a) == request_fingerprint(b)
    assert request_fingerprint(a) != request_fingerprint(c)


def test_request_error_carries_code_and_recovered_id() -> None:
    with pytest.raises(RequestError) as caught:
        decode_request(json.dumps({"id": "keep", "command": "ping", "protocol": 3}).encode())
    assert (caught.value.code, caught.value.request_id) == (ErrorCode.UNSUPPORTED_VERSION, "keep")
    assert isinstance(caught.value, ProtocolError)


def test_request_values_are_validated() -> None:
    with pytest.raises(ProtocolError, match="id must be"):
        Request(id=True, command="ping")
    with pytest.raises(ProtocolError, match="command must be"):
        Request(id=1, command="")
