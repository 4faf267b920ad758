"""Thousands of random and malformed requests: every answerable one gets exactly one well-formed reply, the
server keeps serving, and nothing is left behind (no pending work, bounded cache, no extra threads)."""

from __future__ import annotations

import json
import os
import random
import threading
import time
from typing import Any

import pytest
import zmq

from daemon.ipc.control import decode_reply
from daemon.ipc.control_server import ControlServer
from tests.control.helpers import assert_still_serving, dealer, wait_for
from tests.control.run_manager_double import InMemoryRunManager

MAX_REQUEST = 8192
MESSAGES = 3000
BATCH = 100
COMMANDS = ["ping", "hello", "status", "profiles", "validate", "start", "stop", "abort", "reload", "", "strat"]


def random_json(rng: random.Random, depth: int = 0) -> Any:
    kind = rng.randrange(8 if depth < 4 else 5)
    if kind == 0:
        return None
    if kind == 1:
        return rng.choice([True, False])
    if kind == 2:
        return rng.randint(-(2**63), 2**63)
    if kind == 3:
        return rng.uniform(-1e9, 1e9)
    if kind == 4:
        return "".join(chr(rng.randrange(0x20, 0x2FF)) for _ in range(rng.randrange(12)))
    if kind == 5:
        return [random_json(rng, depth + 1) for _ in range(rng.randrange(4))]
    return {
        rng.choice(["id", "run_id", "name", "yaml", "overrides", "x"]): random_json(rng, depth + 1)
        for _ in range(rng.randrange(4))
    }


def random_request(rng: random.Random) -> bytes:
    body: dict[str, Any] = {}
    if rng.random() < 0.9:
        body["id"] = rng.choice([rng.randrange(50), f"id-{rng.randrange(10_000)}", random_json(rng)])
    if rng.random() < 0.9:
        body["command"] = rng.choice([*COMMANDS, random_json(rng)])
    if rng.random() < 0.7:
        body["args"] = rng.choice(
            [
                {},
                {"name": rng.choice(["demo", "other", "broken", "nope", "../x"])},
                {"run_id": f"run-{rng.randrange(5)}"},
                {"yaml": "camera: cam" + str(rng.randrange(3))},
                random_json(rng),
            ]
        )
    if rng.random() < 0.05:
        body["protocol"] = rng.choice([1, 2, "1", None])
    return json.dumps(body).encode()


def random_message(rng: random.Random) -> list[bytes]:
    roll = rng.random()
    if roll < 0.45:
        payload = random_request(rng)
    elif roll < 0.65:
        payload = json.dumps(random_json(rng)).encode()
    elif roll < 0.85:
        payload = rng.randbytes(rng.randrange(300))
    elif roll < 0.95:
        return [rng.randbytes(rng.randrange(20)) for _ in range(rng.randrange(1, 7))]
    else:
        payload = b'{"id": "big", "pad": "' + b"x" * rng.randrange(MAX_REQUEST, 2 * MAX_REQUEST - 64) + b'"}'
    return [b"", payload] if rng.random() < 0.8 else [payload]


@pytest.mark.timeout(60)
def test_fuzzed_requests_each_get_one_reply_and_nothing_leaks(manager: InMemoryRunManager) -> None:
    rng = random.Random(20241122)
    threads_before = threading.active_count()
    fds_before = len(os.listdir("/proc/self/fd"))
    started = time.monotonic()
    with ControlServer("tcp://127.0.0.1:*", manager, max_request_bytes=MAX_REQUEST, reply_cache_size=256) as srv:
        with dealer(srv.endpoint) as sock:
            replies = 0
            for _ in range(MESSAGES // BATCH):
                for _ in range(BATCH):
                    sock.send_multipart(random_message(rng))
                for _ in range(BATCH):
                    assert sock.poll(5000, zmq.POLLIN), f"a reply is missing after {replies} replies"
                    decode_reply(sock.recv_multipart()[-1])  # raises on a malformed reply
                    replies += 1
            assert not sock.poll(200, zmq.POLLIN), "more replies than requests"
        for size in (2 * MAX_REQUEST + 1, 1 << 20):  # beyond MAXMSGSIZE: the connection is cut, no reply
            with dealer(srv.endpoint) as cut:
                cut.send_multipart([b"", b"x" * size])
                assert not cut.poll(200, zmq.POLLIN)
        assert_still_serving(srv.endpoint)
        wait_for(lambda: srv.stats().pending == 0)
        stats = srv.stats()
        assert replies == MESSAGES
        assert stats.received == MESSAGES + 1
        assert stats.cached <= 256
        assert stats.dropped_replies == 0
        assert sum(stats.errors.values()) > MESSAGES / 2
    elapsed = time.monotonic() - started
    assert threading.active_count() == threads_before
    assert len(os.listdir("/proc/self/fd")) == fds_before
    assert elapsed < 20
