"""close() is idempotent for the server, client, publisher and subscriber, and leaves no thread behind."""

from __future__ import annotations

import threading
import time

import pytest

from daemon.errors import UnavailableError
from daemon.ipc.client import Client
from daemon.ipc.control_server import ControlServer
from daemon.ipc.events import EventPublisher, Events, Topic
from tests.control.helpers import dealer, request, wait_for
from tests.control.run_manager_double import InMemoryRunManager


def test_server_close_is_idempotent_and_joins_its_threads(manager: InMemoryRunManager) -> None:
    before = threading.active_count()
    server = ControlServer("tcp://127.0.0.1:*", manager)
    server.start()
    assert threading.active_count() == before + 2
    server.close()
    server.close()
    assert threading.active_count() == before


def test_server_close_before_start_and_start_after_close(manager: InMemoryRunManager) -> None:
    server = ControlServer("tcp://127.0.0.1:*", manager)
    server.close()
    server.close()
    with pytest.raises(UnavailableError, match="closed"):
        server.start()


def test_server_start_twice_returns_the_same_endpoint(manager: InMemoryRunManager) -> None:
    with ControlServer("tcp://127.0.0.1:*", manager) as server:
        assert server.start() == server.endpoint


def test_server_close_does_not_wait_forever_for_a_hung_command(manager: InMemoryRunManager) -> None:
    manager.start_gate.clear()
    server = ControlServer("tcp://127.0.0.1:*", manager, close_timeout_s=0.2)
    server.start()
    with dealer(server.endpoint) as sock:
        sock.send_multipart([b"", request(id="hung", command="start", args={"name": "demo"})])
        wait_for(lambda: manager.calls["start"] == 1)
    started = time.monotonic()
    server.close()
    assert time.monotonic() - started < 2
    manager.start_gate.set()  # the worker finishes, finds the context gone and exits quietly
    wait_for(lambda: not any(t.name == "acqd-control-worker" for t in threading.enumerate()))


def test_client_close_is_idempotent(server: ControlServer) -> None:
    client = Client(server.endpoint)
    client.ping()
    client.close()
    client.close()
    with pytest.raises(UnavailableError, match="closed"):
        client.ping()


def test_publisher_and_subscriber_close_are_idempotent() -> None:
    publisher = EventPublisher("tcp://127.0.0.1:*")
    subscriber = Events(publisher.endpoint)
    subscriber.close()
    subscriber.close()
    publisher.close()
    publisher.close()
    publisher.publish(Topic.STATE, {"after": "close"})  # a no-op, never an error during shutdown
    assert publisher.counts() == {}
