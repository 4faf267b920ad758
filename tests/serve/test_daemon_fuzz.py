"""A few thousand random and malformed requests to the real daemon (including ``start``/``validate`` with random
profile names, inline YAML and overrides): every one gets one well-formed reply, the daemon keeps serving, and a
run still works afterwards."""

from __future__ import annotations

import json
import random
import time
from pathlib import Path
from typing import Any

import pytest
import zmq

from daemon.ipc.control import decode_reply
from tests.control.helpers import dealer
from tests.control.test_fuzz_requests import random_json, random_message
from tests.serve.daemon_process import (
    TERMINAL,
    assert_store_matches_pattern,
    running_daemon,
    sim_profile,
    wait_for_state,
)

pytestmark = pytest.mark.slow

MESSAGES = 3000
BATCH = 100
NAMES = ["fz", "fz_live", "nope", "../etc/passwd", "", "fz.yaml", "a" * 200]
OVERRIDE_KEYS = ["acquisition.frames", "cameras[0].settings.height", "storage.store", "cameras[9].x", "a..b", "x"]


def manager_request(rng: random.Random) -> bytes:
    """A request that reaches the run manager: real and bogus profile names, inline YAML, random overrides."""
    args: dict[str, Any] = {}
    choice = rng.random()
    if choice < 0.5:
        args["name"] = rng.choice(NAMES)
    elif choice < 0.8:
        args["yaml"] = rng.choice([sim_profile("fz_inline", frames=3), "cameras: [", "{}", "- 1", "a: !!python/x 1"])
    if rng.random() < 0.6:
        args["overrides"] = {rng.choice(OVERRIDE_KEYS): random_json(rng) for _ in range(rng.randrange(1, 4))}
    if rng.random() < 0.2:
        args = {"run_id": rng.choice(["x", random_json(rng)])}
    body = {"id": f"m-{rng.randrange(1 << 30)}", "command": rng.choice(["start", "validate", "stop", "abort"])}
    return json.dumps({**body, "args": args}).encode()


def message(rng: random.Random) -> list[bytes]:
    return [b"", manager_request(rng)] if rng.random() < 0.3 else random_message(rng)


@pytest.mark.timeout(60)
def test_thousands_of_random_requests_then_ping_and_a_run_still_work(tmp_path: Path) -> None:
    profiles = {"fz": sim_profile("fz", frames=10, store="fz.zarr"), "fz_live": sim_profile("fz2", until_stopped=True)}
    rng = random.Random(20241123)
    started = time.monotonic()
    with running_daemon(tmp_path, profiles=profiles) as daemon:
        with dealer(daemon.control) as sock:
            replies = 0
            for _ in range(MESSAGES // BATCH):
                for _ in range(BATCH):
                    sock.send_multipart(message(rng))
                for _ in range(BATCH):
                    assert sock.poll(10_000, zmq.POLLIN), f"a reply is missing after {replies} replies"
                    decode_reply(sock.recv_multipart()[-1])  # raises on a malformed reply
                    replies += 1
            assert not sock.poll(200, zmq.POLLIN), "more replies than requests"
        assert replies == MESSAGES
        with daemon.client() as client:
            assert client.ping()["pong"] is True
            for run in client.status()["runs"]:  # a fuzzed start may have succeeded: end it
                if run["state"] not in TERMINAL:
                    client.abort(run["run_id"])
                    wait_for_state(client, run["run_id"])
            run_id = client.start("fz")
            run = wait_for_state(client, run_id)
            assert run["state"] == "finished"
            assert assert_store_matches_pattern(Path(run["store"])) == 10
            requests = client.status()["daemon"]["requests"]
            assert requests["received"] >= MESSAGES
        assert daemon.terminate() == 0
        assert not [entry for entry in daemon.logs() if entry.get("event") == "control_command_failed"]
    assert time.monotonic() - started < 30
