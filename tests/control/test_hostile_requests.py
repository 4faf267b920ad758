"""Each class of hostile input gets the right error code, and the server keeps answering ping afterwards."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import zmq

from daemon.ipc.client import Client, RemoteError
from daemon.ipc.control import ErrorCode
from daemon.ipc.control_server import ControlServer
from tests.control.helpers import assert_still_serving, dealer, exchange, wait_for
from tests.control.helpers import request as req
from tests.control.run_manager_double import InMemoryRunManager


def error_of(reply_parts: list[bytes]) -> tuple[object, str, str]:
    body = json.loads(reply_parts[-1])
    assert body["ok"] is False
    return body["id"], body["error"]["code"], body["error"]["message"]


MALFORMED = [
    ("not_json", b"{not json", ErrorCode.BAD_REQUEST, None),
    ("empty", b"", ErrorCode.BAD_REQUEST, None),
    ("binary_junk", bytes(range(256)), ErrorCode.BAD_REQUEST, None),
    ("not_utf8", b'{"id": "\xff\xfe"}', ErrorCode.BAD_REQUEST, None),
    ("array", b"[1, 2, 3]", ErrorCode.BAD_REQUEST, None),
    ("string", b'"ping"', ErrorCode.BAD_REQUEST, None),
    ("null", b"null", ErrorCode.BAD_REQUEST, None),
    ("deep_nesting", b"[" * 100_000, ErrorCode.BAD_REQUEST, None),
    ("huge_int", b'{"id": 1' + b"0" * 5000 + b"}", ErrorCode.BAD_REQUEST, None),
    ("nan", b'{"id": "a", "command": "ping", "args": {"x": NaN}}', ErrorCode.BAD_REQUEST, None),
    ("duplicate_key", b'{"id": "a", "command": "ping", "command": "stop"}', ErrorCode.BAD_REQUEST, None),
    ("missing_id", req(command="ping"), ErrorCode.BAD_REQUEST, None),
    ("id_list", req(id=[1], command="ping"), ErrorCode.BAD_REQUEST, None),
    ("id_bool", req(id=True, command="ping"), ErrorCode.BAD_REQUEST, None),
    ("id_empty", req(id="", command="ping"), ErrorCode.BAD_REQUEST, None),
    ("id_too_long", req(id="x" * 129, command="ping"), ErrorCode.BAD_REQUEST, None),
    ("id_unsafe_int", req(id=2**60, command="ping"), ErrorCode.BAD_REQUEST, None),
    ("command_missing", req(id="c1"), ErrorCode.BAD_REQUEST, "c1"),
    ("command_int", req(id="c2", command=5), ErrorCode.BAD_REQUEST, "c2"),
    ("args_list", req(id="c3", command="ping", args=[1]), ErrorCode.BAD_REQUEST, "c3"),
    ("unknown_field", req(id="c4", command="ping", extra=1), ErrorCode.BAD_REQUEST, "c4"),
    ("protocol_string", req(id="c5", command="ping", protocol="1"), ErrorCode.BAD_REQUEST, "c5"),
    ("protocol_2", req(id="c6", command="ping", protocol=2), ErrorCode.UNSUPPORTED_VERSION, "c6"),
    ("unknown_command", req(id=7, command="strat"), ErrorCode.UNKNOWN_COMMAND, 7),
    ("ping_with_args", req(id="a1", command="ping", args={"x": 1}), ErrorCode.INVALID_ARGS, "a1"),
    ("stop_without_run", req(id="a2", command="stop"), ErrorCode.INVALID_ARGS, "a2"),
    ("stop_run_int", req(id="a3", command="stop", args={"run_id": 5}), ErrorCode.INVALID_ARGS, "a3"),
    (
        "start_name_and_yaml",
        req(id="a4", command="start", args={"name": "demo", "yaml": "camera: c"}),
        ErrorCode.INVALID_ARGS,
        "a4",
    ),
    ("start_nothing", req(id="a5", command="start"), ErrorCode.INVALID_ARGS, "a5"),
    (
        "overrides_list",
        req(id="a6", command="validate", args={"name": "demo", "overrides": [1]}),
        ErrorCode.INVALID_ARGS,
        "a6",
    ),
    (
        "profile_traversal",
        req(id="a7", command="start", args={"name": "../../etc/passwd"}),
        ErrorCode.INVALID_ARGS,
        "a7",
    ),
    ("hello_client_int", req(id="a8", command="hello", args={"client": 5}), ErrorCode.INVALID_ARGS, "a8"),
    ("status_typo", req(id="a9", command="status", args={"runid": "x"}), ErrorCode.INVALID_ARGS, "a9"),
]


@pytest.mark.parametrize(
    ("payload", "code", "request_id"), [case[1:] for case in MALFORMED], ids=[case[0] for case in MALFORMED]
)
def test_malformed_request_gets_its_code(
    raw: zmq.Socket[bytes], server: ControlServer, payload: bytes, code: ErrorCode, request_id: object
) -> None:
    got_id, got_code, message = error_of(exchange(raw, [b"", payload]))
    assert (got_id, got_code) == (request_id, code.value)
    assert message
    assert_still_serving(server.endpoint)


def test_unknown_command_suggests_the_near_one(raw: zmq.Socket[bytes]) -> None:
    _, code, message = error_of(exchange(raw, [b"", req(id="u", command="strat")]))
    assert code == "unknown_command"
    assert "Did you mean 'start'?" in message


def test_unknown_argument_suggests_the_near_one(raw: zmq.Socket[bytes]) -> None:
    _, code, message = error_of(exchange(raw, [b"", req(id="u", command="status", args={"runid": "x"})]))
    assert code == "invalid_args"
    assert "Did you mean 'run_id'?" in message


@pytest.mark.parametrize(
    "parts",
    [[b""], [b"", b"{}", b"{}"], [b"", *([b"x"] * 100)], [b"a", b"b"]],
    ids=["no_body", "two_bodies", "hundred_parts", "two_parts_no_delimiter"],
)
def test_wrong_part_count_is_bad_request(raw: zmq.Socket[bytes], server: ControlServer, parts: list[bytes]) -> None:
    got_id, code, message = error_of(exchange(raw, parts))
    assert (got_id, code) == (None, "bad_request")
    assert "exactly one JSON part" in message
    assert_still_serving(server.endpoint)


def test_delimiterless_dealer_gets_a_delimiterless_reply(raw: zmq.Socket[bytes]) -> None:
    reply = exchange(raw, [req(id="d", command="ping")])
    assert len(reply) == 1
    assert json.loads(reply[0])["ok"] is True


def test_plain_req_socket_is_served(server: ControlServer) -> None:
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    sock = ctx.socket(zmq.REQ)
    sock.linger = 0
    try:
        sock.connect(server.endpoint)
        sock.send(req(id="r", command="ping"))
        assert sock.poll(2000, zmq.POLLIN)
        assert json.loads(sock.recv())["id"] == "r"
    finally:
        sock.close()
        ctx.term()


@pytest.fixture
def small_server(manager: InMemoryRunManager) -> Iterator[ControlServer]:
    with ControlServer("tcp://127.0.0.1:*", manager, max_request_bytes=4096) as srv:
        yield srv


def test_oversize_request_is_too_large(small_server: ControlServer) -> None:
    with dealer(small_server.endpoint) as sock:
        payload = req(id="big", command="validate", args={"yaml": "x" * 5000})
        got_id, code, message = error_of(exchange(sock, [b"", payload]))
    assert (got_id, code) == (None, "too_large")
    assert "limit is 4096 bytes" in message
    assert_still_serving(small_server.endpoint)


def test_far_oversize_message_is_cut_off_by_maxmsgsize(small_server: ControlServer) -> None:
    with dealer(small_server.endpoint) as sock:
        sock.send_multipart([b"", b"x" * 100_000])
        assert not sock.poll(500, zmq.POLLIN)
    assert_still_serving(small_server.endpoint)
    assert small_server.stats().received == 1  # only the ping: the huge message never reached the loop


def test_stop_unknown_run_is_not_found(client: Client) -> None:
    with pytest.raises(RemoteError) as caught:
        client.stop("run-404")
    assert caught.value.code == ErrorCode.NOT_FOUND
    assert "run-404" in caught.value.message


def test_status_of_unknown_run_is_not_found(client: Client) -> None:
    with pytest.raises(RemoteError) as caught:
        client.status("run-404")
    assert caught.value.code == ErrorCode.NOT_FOUND


def test_start_twice_on_one_camera_is_conflict(client: Client) -> None:
    first = client.start("demo")
    with pytest.raises(RemoteError) as caught:
        client.start(yaml="camera: cam0\n")
    assert caught.value.code == ErrorCode.CONFLICT
    assert first in caught.value.message
    client.stop(first)
    assert client.start("demo") != first  # the camera is free again


def test_invalid_profile(client: Client) -> None:
    with pytest.raises(RemoteError) as caught:
        client.validate("broken")
    assert caught.value.code == ErrorCode.INVALID_PROFILE
    with pytest.raises(RemoteError) as caught:
        client.start("demo", overrides={"bogus": 1})
    assert caught.value.code == ErrorCode.INVALID_PROFILE


def test_unknown_profile_is_not_found(client: Client) -> None:
    with pytest.raises(RemoteError) as caught:
        client.start("nope")
    assert caught.value.code == ErrorCode.NOT_FOUND


def test_manager_bug_is_internal_and_logged(client: Client, server: ControlServer) -> None:
    with pytest.raises(RemoteError) as caught:
        client.validate("explode")
    assert caught.value.code == ErrorCode.INTERNAL
    assert "RuntimeError" in caught.value.message
    assert "a bug in the manager" not in caught.value.message  # details go to the log, not the wire
    assert client.ping()["pong"] is True


def test_result_that_is_not_json_is_internal(client: Client) -> None:
    with pytest.raises(RemoteError) as caught:
        client.validate(yaml="camera: unjsonable\n")
    assert caught.value.code == ErrorCode.INTERNAL
    assert client.ping()["pong"] is True


def test_client_that_vanishes_costs_a_counted_drop(server: ControlServer, manager: InMemoryRunManager) -> None:
    manager.start_gate.clear()
    with dealer(server.endpoint) as sock:
        sock.send_multipart([b"", req(id="gone", command="start", args={"name": "demo"})])
        wait_for(lambda: server.stats().pending == 1)
    manager.start_gate.set()
    wait_for(lambda: server.stats().dropped_replies == 1)
    assert_still_serving(server.endpoint)
