"""The events socket: a PUB publisher of daemon events and :class:`Events`, a subscriber helper for GUIs.

Messages are multipart ``[topic, JSON, optional raw buffer]``. The JSON is ``{"protocol", "seq", "time", "data"}``
(``seq`` counts every message this publisher sent, so a subscriber sees gaps). Topics: ``state`` (a run changed
state), ``metrics`` (periodic counts and rates), ``summary`` (one per finished run), ``log`` (notable daemon
events), ``preview`` (a downsampled frame: ``data`` holds ``shape``, ``dtype`` (``uint8``/``uint16``, little
endian), ``key``, ``run_id``, ``frame_id``, ``step``; the raw pixels are the third part).

Design notes:
- Publishing never blocks and never queues without bound: sends are ``NOBLOCK`` on a PUB socket with a small
  ``SNDHWM``, and PUB drops for a subscriber whose queue is full, by design. Previews are also rate-limited per
  (run, array key) before they reach the socket (default at most 5 per second each) and downsampled by striding
  to at most ``preview_max_px`` on the longer side, so a preview costs little even when nobody watches.
- The socket is shared by the run's threads, so sends are serialised with a lock (zmq sockets are not thread-safe).
- The subscriber skips (and counts) malformed messages instead of raising: a GUI keeps running on junk.
- Binding follows the same policy as the control socket (``curve.prepare_bind``).
"""

from __future__ import annotations

import collections
import enum
import json
import math
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import zmq

from daemon.errors import ConfigError, ProtocolError
from daemon.ipc.control import PROTOCOL_VERSION, strict_json_loads
from daemon.ipc.curve import (
    ClientKeyAuthenticator,
    CurveClientSettings,
    CurveServerSettings,
    apply_client_keys,
    apply_server_keys,
    ensure_server_keys,
    prepare_bind,
)
from daemon.log import get_logger

log = get_logger("events")

DEFAULT_SNDHWM = 64
DEFAULT_RCVHWM = 256
DEFAULT_PREVIEW_MAX_HZ = 5.0
DEFAULT_PREVIEW_MAX_PX = 256
MAX_EVENT_BYTES = 16 << 20
_PREVIEW_DTYPES: dict[str, np.dtype[Any]] = {"uint8": np.dtype("<u1"), "uint16": np.dtype("<u2")}


class Topic(str, enum.Enum):
    STATE = "state"
    METRICS = "metrics"
    SUMMARY = "summary"
    LOG = "log"
    PREVIEW = "preview"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True, slots=True)
class Event:
    """One decoded event; ``buffer`` holds a preview's raw pixels."""

    topic: str
    seq: int
    time: float
    data: Mapping[str, Any]
    buffer: bytes | None = None

    def preview_array(self) -> npt.NDArray[Any]:
        """The preview pixels as an array of the announced shape and dtype (read-only view of ``buffer``)."""
        dtype = _PREVIEW_DTYPES.get(str(self.data.get("dtype")))
        shape = _parse_shape(self.data.get("shape"))
        if self.buffer is None or dtype is None or shape is None:
            raise ProtocolError(f"event {self.seq} on {self.topic!r} is not a well-formed preview.")
        if math.prod(shape) * dtype.itemsize != len(self.buffer):
            raise ProtocolError(f"preview {self.seq}: {len(self.buffer)} bytes do not match shape {shape} {dtype}.")
        array: npt.NDArray[Any] = np.frombuffer(self.buffer, dtype=dtype).reshape(shape)
        return array


class EventPublisher:
    """Publishes events on a PUB socket; every method is safe to call from any thread and never blocks."""

    def __init__(
        self,
        endpoint: str,
        *,
        curve: CurveServerSettings | None = None,
        sndhwm: int = DEFAULT_SNDHWM,
        preview_max_hz: float | None = DEFAULT_PREVIEW_MAX_HZ,
        preview_max_px: int = DEFAULT_PREVIEW_MAX_PX,
    ) -> None:
        if preview_max_hz is not None and preview_max_hz <= 0:
            raise ConfigError(f"preview_max_hz must be > 0 or None (no limit). Got {preview_max_hz} instead.")
        if preview_max_px < 1:
            raise ConfigError(f"preview_max_px must be >= 1. Got {preview_max_px} instead.")
        self._min_interval = 0.0 if preview_max_hz is None else 1.0 / preview_max_hz
        self._max_px = preview_max_px
        self._lock = threading.Lock()
        self._last_preview: dict[tuple[str, str], float] = {}
        self._counts: collections.Counter[str] = collections.Counter()
        self._seq = 0
        self._closed = False
        self._ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
        self._auth: ClientKeyAuthenticator | None = None
        self._sock = self._ctx.socket(zmq.PUB)
        try:
            self._bind(endpoint, curve, sndhwm)
        except BaseException:
            self.close()
            raise
        self.endpoint = self._sock.getsockopt_string(zmq.LAST_ENDPOINT)
        log.info("events_publisher_started", endpoint=self.endpoint, curve=curve is not None)

    def _bind(self, endpoint: str, curve: CurveServerSettings | None, sndhwm: int) -> None:
        prepare_bind(endpoint, secure=curve is not None)
        self._sock.linger = 0
        self._sock.sndhwm = sndhwm
        if curve is not None:
            apply_server_keys(self._sock, ensure_server_keys(curve.keys_dir))
            self._auth = ClientKeyAuthenticator(self._ctx, curve.clients_dir)
        try:
            self._sock.bind(endpoint)
        except zmq.ZMQError as exc:
            raise ConfigError(f"cannot bind events endpoint {endpoint!r}: {exc}") from exc

    def publish(self, topic: Topic | str, data: Mapping[str, Any], buffer: bytes | memoryview | None = None) -> None:
        """Send one event (dropped by the socket, not queued, when a subscriber is slow)."""
        name = _parse_topic(topic)
        with self._lock:
            if self._closed:
                return
            self._seq += 1
            body = {"protocol": PROTOCOL_VERSION, "seq": self._seq, "time": time.time(), "data": dict(data)}
            try:
                header = json.dumps(body, allow_nan=False, separators=(",", ":")).encode("ascii")
            except (TypeError, ValueError) as exc:
                raise ProtocolError(f"event data for {name!r} is not plain JSON: {exc}") from exc
            parts: list[Any] = [name.encode(), header] if buffer is None else [name.encode(), header, buffer]
            self._sock.send_multipart(parts, flags=zmq.NOBLOCK)
            self._counts[name] += 1

    def preview(self, key: str, pixels: npt.NDArray[Any], *, run_id: str, frame_id: int) -> bool:
        """Publish a downsampled preview unless one for (run, key) went out too recently; True when sent."""
        now = time.monotonic()
        with self._lock:
            last = self._last_preview.get((run_id, key))
            if last is not None and now - last < self._min_interval:
                self._counts["preview_rate_limited"] += 1
                return False
            self._last_preview[(run_id, key)] = now
        small, step = downsample(pixels, self._max_px)
        dtype_name = "uint8" if small.dtype.itemsize == 1 else "uint16"
        data = {"run_id": run_id, "key": key, "frame_id": frame_id, "shape": list(small.shape), "dtype": dtype_name}
        self.publish(Topic.PREVIEW, {**data, "step": step}, small.tobytes())
        return True

    def forget_run(self, run_id: str) -> None:
        """Drop the preview rate-limit state of a finished run."""
        with self._lock:
            for entry in [entry for entry in self._last_preview if entry[0] == run_id]:
                del self._last_preview[entry]

    def counts(self) -> dict[str, int]:
        """Messages handed to the socket by topic, and previews skipped by the rate limit."""
        with self._lock:
            return dict(self._counts)

    def close(self) -> None:
        """Close the socket and context; idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._sock.close(linger=0)
        if self._auth is not None:
            self._auth.close()
        self._ctx.term()

    def __enter__(self) -> EventPublisher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def downsample(pixels: npt.NDArray[Any], max_px: int) -> tuple[npt.NDArray[Any], int]:
    """Stride a 2-D ``(y, x)`` or 3-D ``(y, x, c)`` uint8/uint16 frame to at most ``max_px`` per side."""
    if pixels.dtype not in (np.uint8, np.uint16):
        raise ConfigError(f"preview pixels must be uint8 or uint16. Got {pixels.dtype} instead.")
    if pixels.ndim not in (2, 3) or 0 in pixels.shape:
        raise ConfigError(f"preview pixels must be a non-empty (y, x) or (y, x, c) array. Got {pixels.shape}.")
    step = max(1, math.ceil(max(pixels.shape[0], pixels.shape[1]) / max_px))
    small = pixels[::step, ::step]
    return np.ascontiguousarray(small, dtype=small.dtype.newbyteorder("<")), step


class Events:
    """Subscribes to an events endpoint and yields decoded :class:`Event` values.

    Iterating stops when no event arrives within ``timeout_s``; :meth:`recv` returns ``None`` then.
    """

    def __init__(
        self,
        endpoint: str,
        topics: Iterable[Topic | str] = tuple(Topic),
        *,
        timeout_s: float = 5.0,
        curve: CurveClientSettings | None = None,
        rcvhwm: int = DEFAULT_RCVHWM,
    ) -> None:
        self.timeout_s = timeout_s
        self.malformed = 0
        self._closed = False
        self._ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
        self._sock = self._ctx.socket(zmq.SUB)
        self._sock.linger = 0
        self._sock.rcvhwm = rcvhwm
        self._sock.setsockopt(zmq.MAXMSGSIZE, MAX_EVENT_BYTES)
        try:
            if curve is not None:
                apply_client_keys(self._sock, curve)
            for topic in topics:
                self._sock.subscribe(_parse_topic(topic))
            self._sock.connect(endpoint)
        except BaseException:
            self.close()
            raise

    def recv(self, timeout_s: float | None = None) -> Event | None:
        """The next well-formed event, or ``None`` when none arrives in time (malformed ones are counted)."""
        wait = self.timeout_s if timeout_s is None else timeout_s
        deadline = time.monotonic() + wait
        while True:
            remaining_ms = max(0, int((deadline - time.monotonic()) * 1000))
            if not self._sock.poll(remaining_ms, zmq.POLLIN):
                return None
            parts = self._sock.recv_multipart()
            try:
                return decode_event(parts)
            except ProtocolError as exc:
                self.malformed += 1
                log.debug("event_malformed", error=str(exc))

    def __iter__(self) -> Iterator[Event]:
        while (event := self.recv()) is not None:
            yield event

    def close(self) -> None:
        """Close the socket and context; idempotent."""
        if self._closed:
            return
        self._closed = True
        self._sock.close(linger=0)
        self._ctx.term()

    def __enter__(self) -> Events:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def decode_event(parts: list[bytes]) -> Event:
    """Decode ``[topic, JSON, optional buffer]``; anything else raises :class:`ProtocolError`."""
    if len(parts) not in (2, 3):
        raise ProtocolError(f"an event has 2 or 3 parts. Got {len(parts)} instead.")
    topic = parts[0].decode("ascii", errors="replace")
    body = strict_json_loads(parts[1])
    if not isinstance(body, dict) or not isinstance(body.get("data"), dict):
        raise ProtocolError(f"event on {topic!r}: the JSON part must be an object with a data object.")
    if body.get("protocol") != PROTOCOL_VERSION:
        raise ProtocolError(f"event on {topic!r}: protocol {body.get('protocol')!r} is not {PROTOCOL_VERSION}.")
    seq, stamp = body.get("seq"), body.get("time")
    if not isinstance(seq, int) or not isinstance(stamp, int | float):
        raise ProtocolError(f"event on {topic!r}: seq must be an integer and time a number.")
    buffer = parts[2] if len(parts) == 3 else None
    return Event(topic=topic, seq=seq, time=float(stamp), data=body["data"], buffer=buffer)


def _parse_topic(topic: Topic | str) -> str:
    try:
        return Topic(topic).value
    except ValueError as exc:
        known = ", ".join(t.value for t in Topic)
        raise ConfigError(f"event topic must be one of {known}. Got {topic!r} instead.") from exc


def _parse_shape(value: object) -> tuple[int, ...] | None:
    if not isinstance(value, list) or len(value) not in (2, 3):
        return None
    if not all(isinstance(n, int) and not isinstance(n, bool) and n > 0 for n in value):
        return None
    return tuple(value)
