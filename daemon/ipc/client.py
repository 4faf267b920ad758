"""The Python client of the control protocol, for GUI authors and ``acqd ctl``.

```python
with Client("ipc:///run/acqd/control.sock") as daemon:
    run_id = daemon.start(name="demo", overrides={"acquisition.frames": 50})
    print(daemon.status(run_id)["runs"][0]["state"])
    daemon.stop(run_id)
```

Design notes:
- A DEALER socket sending REQ-compatible ``[empty delimiter, JSON]`` messages, with lazy-pirate retries: when no
  reply arrives within ``timeout_s`` the socket is closed (dropping anything queued) and a fresh one resends the
  *same* request id, ``retries`` times. The server's reply cache answers a retry without executing it again.
  Replies whose id is not the one awaited (late answers to an earlier attempt) are discarded.
- Failures are typed: :class:`RemoteError` carries the server's stable ``code`` and message; :class:`ControlTimeout`
  (a ``TimeoutError``) means no answer after every attempt, which is also what a CURVE server does to a client
  whose key it refuses (the handshake fails silently).
- Not thread-safe: use one client per thread. ``close`` is idempotent.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from typing import Any

import zmq

from daemon.errors import AcqdError, ConfigError, ProtocolError, UnavailableError
from daemon.ipc.control import ErrorCode, Reply, Request, RequestId, decode_reply, encode_request
from daemon.ipc.curve import CurveClientSettings, apply_client_keys
from daemon.log import get_logger

log = get_logger("control_client")

MAX_REPLY_BYTES = 64 << 20


class RemoteError(AcqdError, RuntimeError):
    """The daemon answered with an error: ``code`` is stable (an :class:`ErrorCode` value), ``message`` human."""

    def __init__(self, command: str, code: str, message: str, request_id: RequestId | None) -> None:
        super().__init__(f"{command}: {code}: {message}")
        self.command = command
        self.code = code
        self.message = message
        self.request_id = request_id


class ControlTimeout(AcqdError, TimeoutError):
    """No reply after every attempt (daemon down, overloaded, or refusing our CURVE key)."""


class Client:
    """A control-protocol client (see the module notes); a context manager."""

    def __init__(
        self,
        endpoint: str,
        *,
        timeout_s: float = 5.0,
        retries: int = 2,
        curve: CurveClientSettings | None = None,
    ) -> None:
        if timeout_s <= 0:
            raise ConfigError(f"timeout_s must be > 0. Got {timeout_s} instead.")
        if retries < 0:
            raise ConfigError(f"retries must be >= 0. Got {retries} instead.")
        self.endpoint = endpoint
        self.timeout_s = timeout_s
        self.retries = retries
        self._curve = curve
        if curve is not None:
            curve.load()  # fail now, with a ConfigError naming the file, rather than at the first call
        self._ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
        self._sock: zmq.Socket[bytes] | None = None
        self._closed = False

    # commands ----------------------------------------------------------------------------------------------------
    def ping(self) -> dict[str, Any]:
        return dict(self.call("ping"))

    def hello(self, client: str | None = None) -> dict[str, Any]:
        return dict(self.call("hello", {} if client is None else {"client": client}))

    def status(self, run_id: str | None = None) -> dict[str, Any]:
        return dict(self.call("status", {} if run_id is None else {"run_id": run_id}))

    def profiles(self) -> list[dict[str, Any]]:
        return list(self.call("profiles")["profiles"])

    def validate(
        self, name: str | None = None, *, yaml: str | None = None, overrides: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        return dict(self.call("validate", _profile_args(name, yaml, overrides)))

    def start(
        self, name: str | None = None, *, yaml: str | None = None, overrides: Mapping[str, Any] | None = None
    ) -> str:
        """Start a run from a named or inline profile; returns the run id."""
        return str(self.call("start", _profile_args(name, yaml, overrides))["run_id"])

    def resume(
        self,
        run_id: str,
        name: str | None = None,
        *,
        yaml: str | None = None,
        overrides: Mapping[str, Any] | None = None,
    ) -> str:
        """Start a run appending to the store of the interrupted run ``run_id`` (its journal's profile unless one is
        given); returns the new run's id."""
        args: dict[str, Any] = {"resume": run_id}
        if name is not None or yaml is not None:
            args.update(_profile_args(name, yaml, overrides))
        elif overrides:
            args["overrides"] = dict(overrides)
        return str(self.call("start", args)["run_id"])

    def stop(self, run_id: str) -> dict[str, Any]:
        return dict(self.call("stop", {"run_id": run_id}))

    def abort(self, run_id: str) -> dict[str, Any]:
        return dict(self.call("abort", {"run_id": run_id}))

    def reload(self) -> dict[str, Any]:
        return dict(self.call("reload"))

    # transport ---------------------------------------------------------------------------------------------------
    def call(self, command: str, args: Mapping[str, Any] | None = None, *, request_id: RequestId | None = None) -> Any:
        """Send one request (retrying with the same id) and return its result, or raise."""
        if self._closed:
            raise UnavailableError("this client is closed; create a new one.")
        request = Request(
            id=request_id if request_id is not None else uuid.uuid4().hex, command=command, args=args or {}
        )
        payload = encode_request(request)
        attempts = self.retries + 1
        for attempt in range(1, attempts + 1):
            reply = self._attempt(payload, request.id)
            if reply is not None:
                return _result(command, reply)
            log.debug("control_retry", command=command, request_id=request.id, attempt=attempt)
            self._reset()
        raise ControlTimeout(
            f"{command}: no reply from {self.endpoint} to request {request.id!r} after {attempts} attempt(s) "
            f"of {self.timeout_s} s."
        )

    def _attempt(self, payload: bytes, request_id: RequestId) -> Reply | None:
        sock = self._socket()
        try:
            sock.send_multipart([b"", payload], flags=zmq.NOBLOCK)
        except zmq.Again:
            return None
        deadline = time.monotonic() + self.timeout_s
        while (remaining := deadline - time.monotonic()) > 0:
            if not sock.poll(max(1, int(remaining * 1000)), zmq.POLLIN):
                return None
            parts = sock.recv_multipart()
            reply = _decode(parts)
            if reply is not None and reply.id == request_id:
                return reply
        return None

    def _socket(self) -> zmq.Socket[bytes]:
        if self._sock is None:
            sock = self._ctx.socket(zmq.DEALER)
            sock.linger = 0
            sock.setsockopt(zmq.MAXMSGSIZE, MAX_REPLY_BYTES)
            if self._curve is not None:
                apply_client_keys(sock, self._curve)
            sock.connect(self.endpoint)
            self._sock = sock
        return self._sock

    def _reset(self) -> None:
        if self._sock is not None:
            self._sock.close(linger=0)
            self._sock = None

    def close(self) -> None:
        """Close the socket and context; idempotent."""
        if self._closed:
            return
        self._closed = True
        self._reset()
        self._ctx.term()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _profile_args(name: str | None, yaml: str | None, overrides: Mapping[str, Any] | None) -> dict[str, Any]:
    args: dict[str, Any] = {}
    if name is not None:
        args["name"] = name
    if yaml is not None:
        args["yaml"] = yaml
    if overrides:
        args["overrides"] = dict(overrides)
    return args


def _decode(parts: list[bytes]) -> Reply | None:
    if len(parts) != 2 or parts[0] != b"":
        log.warning("control_reply_malformed", parts=len(parts))
        return None
    try:
        return decode_reply(parts[1])
    except ProtocolError as exc:
        log.warning("control_reply_malformed", error=str(exc))
        return None


def _result(command: str, reply: Reply) -> Any:
    if reply.error is not None:
        raise RemoteError(command, reply.error.code, reply.error.message, reply.id)
    return reply.result


__all__ = ["Client", "ControlTimeout", "ErrorCode", "RemoteError"]
