"""Small helpers shared by the control tests (waiting on a condition, raw socket exchanges)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import zmq

from daemon.ipc.client import Client
from tests.waiting import wait_until


def wait_for(predicate: Callable[[], bool], timeout_s: float = 3.0) -> None:
    wait_until(predicate, timeout_s)


@contextmanager
def dealer(endpoint: str) -> Iterator[zmq.Socket[bytes]]:
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    sock = ctx.socket(zmq.DEALER)
    sock.linger = 0
    sock.connect(endpoint)
    try:
        yield sock
    finally:
        sock.close()
        ctx.term()


def exchange(sock: zmq.Socket[bytes], parts: list[bytes], timeout_ms: int = 2000) -> list[bytes]:
    sock.send_multipart(parts)
    assert sock.poll(timeout_ms, zmq.POLLIN), "no reply"
    return sock.recv_multipart()


def request(**fields: Any) -> bytes:
    return json.dumps(fields).encode()


def assert_still_serving(endpoint: str) -> None:
    with Client(endpoint, timeout_s=2.0, retries=0) as fresh:
        assert fresh.ping()["pong"] is True
