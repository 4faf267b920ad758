"""Settings of the two ends of the frame stream: :class:`SenderSettings` and :class:`ReceiverSettings`.

Design notes:
- The sender decides the timing (heartbeat interval, liveness timeout) and tells the worker in WELCOME, so both
  ends always agree. The worker decides its window (credit): how many frames and bytes it will hold at once.
- ``config`` is the pipeline's opaque JSON for the worker (array settings, store path...): checked to be
  serialisable here, never interpreted by the stream.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from daemon.errors import ConfigError
from daemon.ipc.checks import check_int, check_json_object, check_seconds, check_text
from daemon.ipc.endpoint import parse_endpoint
from daemon.ipc.frame_queue import QueueMode

MIB = 1 << 20


def _check_timing(heartbeat_interval_s: float, liveness_timeout_s: float) -> None:
    check_seconds("heartbeat_interval_s", heartbeat_interval_s)
    check_seconds("liveness_timeout_s", liveness_timeout_s)
    if liveness_timeout_s < 2 * heartbeat_interval_s:
        raise ConfigError(
            "liveness_timeout_s must be at least twice heartbeat_interval_s "
            f"({2 * heartbeat_interval_s} s). Got {liveness_timeout_s} instead."
        )


@dataclass(frozen=True, slots=True)
class SenderSettings:
    """The acquisition side of one stream (one worker)."""

    endpoint: str
    run_id: str
    config: dict[str, Any] = field(default_factory=dict)
    queue_max_bytes: int = 512 * MIB
    queue_max_frames: int | None = None
    queue_mode: QueueMode = QueueMode.DROP
    block_timeout_s: float = 10.0
    heartbeat_interval_s: float = 0.5
    liveness_timeout_s: float = 5.0

    def __post_init__(self) -> None:
        parse_endpoint(self.endpoint)
        check_text("run_id", self.run_id, 1, 255)
        check_json_object("config", self.config)
        try:
            json.dumps(self.config, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"config must be JSON-serialisable: {exc}. Got {self.config!r} instead.") from exc
        check_int("queue_max_bytes", self.queue_max_bytes, 1)
        if self.queue_max_frames is not None:
            check_int("queue_max_frames", self.queue_max_frames, 1)
        try:
            object.__setattr__(self, "queue_mode", QueueMode(self.queue_mode))
        except ValueError:
            accepted = [m.value for m in QueueMode]
            raise ConfigError(f"queue_mode must be one of {accepted}. Got {self.queue_mode!r} instead.") from None
        check_seconds("block_timeout_s", self.block_timeout_s)
        _check_timing(self.heartbeat_interval_s, self.liveness_timeout_s)


@dataclass(frozen=True, slots=True)
class ReceiverSettings:
    """The worker side of one stream."""

    endpoint: str
    worker_id: str
    window_frames: int = 64
    window_bytes: int = 256 * MIB
    connect_timeout_s: float = 10.0
    linger_s: float = 1.0
    ring_bytes: int = 32 * MIB  # the frame ring offered to a sender on this host (daemon.ipc.frame_ring); 0: none

    def __post_init__(self) -> None:
        parse_endpoint(self.endpoint)
        check_text("worker_id", self.worker_id, 1, 255)
        check_int("window_frames", self.window_frames, 1)
        check_int("window_bytes", self.window_bytes, 1)
        check_int("ring_bytes", self.ring_bytes, 0)
        check_seconds("connect_timeout_s", self.connect_timeout_s)
        check_seconds("linger_s", self.linger_s)
