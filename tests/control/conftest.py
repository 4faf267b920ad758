"""Fixtures of the control tests: a real ControlServer on loopback TCP with the in-memory run manager."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
import zmq

from daemon.ipc.client import Client
from daemon.ipc.control_server import ControlServer
from tests.control.run_manager_double import InMemoryRunManager


@pytest.fixture
def manager() -> InMemoryRunManager:
    return InMemoryRunManager()


@pytest.fixture
def server(manager: InMemoryRunManager) -> Iterator[ControlServer]:
    srv = ControlServer("tcp://127.0.0.1:*", manager)
    srv.start()
    yield srv
    manager.start_gate.set()
    srv.close()


@pytest.fixture
def client(server: ControlServer) -> Iterator[Client]:
    with Client(server.endpoint, timeout_s=2.0, retries=0) as c:
        yield c


@pytest.fixture
def raw(server: ControlServer) -> Iterator[zmq.Socket[bytes]]:
    """A bare DEALER connected to the server, for sending what the real client never would."""
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    sock = ctx.socket(zmq.DEALER)
    sock.linger = 0
    sock.connect(server.endpoint)
    yield sock
    sock.close()
    ctx.term()


@pytest.fixture
def no_thread_leak() -> Iterator[None]:
    before = set(threading.enumerate())
    yield
    leaked = [t for t in threading.enumerate() if t not in before and t.is_alive()]
    assert leaked == []
