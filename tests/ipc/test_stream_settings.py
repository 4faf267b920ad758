"""Settings and endpoints of the frame stream: each invalid value is refused naming the field and what is accepted."""

from __future__ import annotations

from typing import Any

import pytest

from daemon.errors import ConfigError
from daemon.ipc.endpoint import parse_endpoint
from daemon.ipc.frame_queue import QueueMode
from daemon.ipc.stream_settings import ReceiverSettings, SenderSettings


@pytest.mark.parametrize(
    "endpoint", ["tcp://127.0.0.1:0", "tcp://*:5555", "tcp://host.example:*", "ipc:///tmp/x.sock", "inproc://a"]
)
def test_valid_endpoints(endpoint: str) -> None:
    assert parse_endpoint(endpoint) == endpoint


@pytest.mark.parametrize(
    ("endpoint", "message"),
    [
        ("127.0.0.1:5555", "must look like"),
        ("udp://x:1", r"scheme must be one of \('ipc', 'tcp', 'inproc'\)"),
        ("tcp://", "no address"),
        ("tcp://host", "tcp endpoint must be 'tcp://HOST:PORT'"),
        ("tcp://host:70000", "PORT 0-65535"),
        ("ipc:///" + "x" * 120, "at most 107 bytes"),
    ],
)
def test_invalid_endpoints(endpoint: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_endpoint(endpoint)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"run_id": ""}, "^run_id must be a string of 1 to 255"),
        ({"config": {"x": object()}}, "^config must be JSON-serialisable"),
        ({"config": {"x": float("nan")}}, "^config must be JSON-serialisable"),
        ({"config": [1]}, "^config must be a JSON object"),
        ({"queue_max_bytes": 0}, "^queue_max_bytes must be an integer >= 1"),
        ({"queue_max_frames": 0}, "^queue_max_frames must be an integer >= 1"),
        ({"queue_mode": "sometimes"}, r"^queue_mode must be one of \['drop', 'block'\]. Got 'sometimes'"),
        ({"block_timeout_s": -1}, "^block_timeout_s must be a finite number of seconds > 0"),
        ({"heartbeat_interval_s": 0}, "^heartbeat_interval_s must be"),
        ({"heartbeat_interval_s": 1.0, "liveness_timeout_s": 1.5}, "^liveness_timeout_s must be at least twice"),
        ({"endpoint": "nowhere"}, "^endpoint must look like"),
    ],
)
def test_invalid_sender_settings(changes: dict[str, Any], message: str) -> None:
    values: dict[str, Any] = {"endpoint": "tcp://127.0.0.1:0", "run_id": "r", **changes}
    with pytest.raises(ConfigError, match=message):
        SenderSettings(**values)


def test_queue_mode_accepts_names() -> None:
    assert SenderSettings("tcp://127.0.0.1:0", "r", queue_mode="block").queue_mode is QueueMode.BLOCK  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"worker_id": ""}, "^worker_id must be a string of 1 to 255"),
        ({"window_frames": 0}, "^window_frames must be an integer >= 1"),
        ({"window_bytes": True}, "^window_bytes must be an integer >= 1"),
        ({"connect_timeout_s": float("nan")}, "^connect_timeout_s must be a finite number"),
        ({"linger_s": 0}, "^linger_s must be"),
    ],
)
def test_invalid_receiver_settings(changes: dict[str, Any], message: str) -> None:
    values: dict[str, Any] = {"endpoint": "tcp://127.0.0.1:5555", "worker_id": "w", **changes}
    with pytest.raises(ConfigError, match=message):
        ReceiverSettings(**values)
