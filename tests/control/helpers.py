"""Small helpers shared by the control tests (waiting on a condition, raw socket exchanges)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import zmq

from daemon.ipc.client import Client


def wait_for(predicate: Callable[[], bool], timeout_s: float = 3.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.005)


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
