"""A request retried with the same id is executed once: answered from the reply cache or joined to the original."""

from __future__ import annotations

import json
import threading
import time

import pytest
import zmq

from daemon.ipc.client import Client, ControlTimeout, RemoteError
from daemon.ipc.control import ErrorCode
from daemon.ipc.control_server import ControlServer
from tests.control.helpers import wait_for
from tests.control.run_manager_double import InMemoryRunManager


def test_same_id_twice_executes_once(client: Client, manager: InMemoryRunManager, server: ControlServer) -> None:
    first = client.call("start", {"name": "demo"}, request_id="start-1")
    second = client.call("start", {"name": "demo"}, request_id="start-1")
    assert first == second
    assert manager.calls["start"] == 1
    assert server.stats().cache_hits == 1


def test_same_id_for_a_different_request_is_conflict(client: Client, manager: InMemoryRunManager) -> None:
    client.call("start", {"name": "demo"}, request_id=42)
    with pytest.raises(RemoteError) as caught:
        client.call("start", {"name": "other"}, request_id=42)
    assert caught.value.code == ErrorCode.CONFLICT
    assert "already used" in caught.value.message
    assert manager.calls["start"] == 1


def test_retry_while_running_joins_the_original(
    raw: zmq.Socket[bytes], manager: InMemoryRunManager, server: ControlServer
) -> None:
    manager.start_gate.clear()
    request = json.dumps({"id": "slow", "command": "start", "args": {"name": "demo"}}).encode()
    raw.send_multipart([b"", request])
    wait_for(lambda: manager.calls["start"] == 1)
    raw.send_multipart([b"", request])
    wait_for(lambda: server.stats().retries_joined == 1)
    manager.start_gate.set()
    replies = []
    for _ in range(2):
        assert raw.poll(2000, zmq.POLLIN)
        replies.append(json.loads(raw.recv_multipart()[1]))
    assert replies[0] == replies[1]
    assert replies[0]["result"]["run_id"] == "run-1"
    assert manager.calls["start"] == 1


def test_client_retries_reuse_the_id(server: ControlServer, manager: InMemoryRunManager) -> None:
    manager.start_gate.clear()
    release = threading.Timer(0.5, manager.start_gate.set)
    release.start()
    try:
        with Client(server.endpoint, timeout_s=0.2, retries=10) as patient:
            run_id = patient.start("demo")
    finally:
        release.cancel()
    assert run_id == "run-1"
    assert manager.calls["start"] == 1
    assert server.stats().retries_joined >= 1


def test_no_answer_after_retries_is_a_timeout() -> None:
    with Client("tcp://127.0.0.1:9", timeout_s=0.1, retries=2) as lonely:
        started = time.monotonic()
        with pytest.raises(ControlTimeout) as caught:
            lonely.ping()
        elapsed = time.monotonic() - started
    assert isinstance(caught.value, TimeoutError)
    assert "after 3 attempt(s)" in str(caught.value)
    assert 0.29 <= elapsed < 2.0


def test_reply_cache_is_bounded(manager: InMemoryRunManager) -> None:
    with ControlServer("tcp://127.0.0.1:*", manager, reply_cache_size=4) as srv, Client(srv.endpoint) as c:
        for _ in range(10):
            c.ping()
        assert srv.stats().cached == 4
