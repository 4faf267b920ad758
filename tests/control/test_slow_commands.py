"""Slow commands run on the worker: ping and status stay fast, and a full queue answers unavailable at once."""

from __future__ import annotations

import json
import time

import pytest
import zmq

from daemon.ipc.client import Client, RemoteError
from daemon.ipc.control import ErrorCode
from daemon.ipc.control_server import ControlServer
from tests.control.helpers import dealer, wait_for
from tests.control.run_manager_double import InMemoryRunManager


def start_request(request_id: str) -> bytes:
    return json.dumps({"id": request_id, "command": "start", "args": {"name": "demo"}}).encode()


def test_ping_and_status_answer_while_start_is_slow(
    raw: zmq.Socket[bytes], client: Client, manager: InMemoryRunManager
) -> None:
    manager.start_gate.clear()
    raw.send_multipart([b"", start_request("held")])
    wait_for(lambda: manager.calls["start"] == 1)
    latencies = []
    for _ in range(20):
        started = time.monotonic()
        client.ping()
        latencies.append(time.monotonic() - started)
    assert client.status()["runs"] == []
    assert max(latencies) < 1.0  # generous for a loaded machine; held start would block forever otherwise
    manager.start_gate.set()
    assert raw.poll(2000, zmq.POLLIN)
    assert json.loads(raw.recv_multipart()[1])["result"] == {"run_id": "run-1"}


def test_full_queue_answers_unavailable_and_it_is_not_cached(manager: InMemoryRunManager) -> None:
    manager.start_gate.clear()
    with (
        ControlServer("tcp://127.0.0.1:*", manager, max_queued=1) as srv,
        Client(srv.endpoint, retries=0) as c,
        dealer(srv.endpoint) as sock,
    ):
        sock.send_multipart([b"", start_request("on-worker")])
        wait_for(lambda: manager.calls["start"] == 1)
        sock.send_multipart([b"", start_request("queued")])
        wait_for(lambda: srv.stats().pending == 2)
        with pytest.raises(RemoteError) as caught:
            c.call("validate", {"name": "demo"}, request_id="refused")
        assert caught.value.code == ErrorCode.UNAVAILABLE
        manager.start_gate.set()
        wait_for(lambda: srv.stats().pending == 0)
        assert c.call("validate", {"name": "demo"}, request_id="refused")["valid"] is True
