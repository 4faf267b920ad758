"""The control server: a ROUTER socket that answers control requests, one reply per answerable message.

Threads: a loop thread owns the ROUTER socket: it receives, decodes, validates, answers cached retries, runs the
quick ``inline`` commands itself and hands the others to one command worker thread (FIFO, bounded queue); the
worker posts each encoded reply back to the loop over an ``inproc://`` PUSH/PULL pair, and the loop sends it.

Design notes (why nothing a client sends can crash or wedge the server):
- Messages are read part by part and at most four parts are kept; any envelope other than ``[identity, (empty
  delimiter,) one JSON part]`` gets a ``bad_request`` reply. ``zmq.MAXMSGSIZE`` is twice the request limit: a
  request between the two gets a ``too_large`` reply, a bigger one makes libzmq drop that connection (memory stays
  bounded; no reply is possible).
- Every reply is sent with ``NOBLOCK`` on a ``ROUTER_MANDATORY`` socket: a vanished client or one that never reads
  costs a counted drop, never a blocked loop.
- Replies are cached per request id (:class:`~daemon.ipc.reply_cache.ReplyCache`), so a retry is answered from the
  cache and never executed twice; a retry arriving while its request is still on the worker joins it and gets the
  same reply. ``unavailable`` replies are not cached (the retry should retry).
- Slow commands never delay ``ping``: they run on the worker. When more than ``max_queued`` wait, new ones get
  ``unavailable`` at once. A command that hangs forever blocks only the worker; ``close`` gives up on it after
  ``close_timeout_s`` (the worker is a daemon thread and creates its result socket per job, so the context can
  still be terminated).
"""

from __future__ import annotations

import collections
import contextlib
import json
import queue
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import zmq

from daemon.commands import CommandContext, Prepared, execute, prepare
from daemon.errors import ConfigError, ProtocolError, UnavailableError
from daemon.ipc.control import (
    MAX_REQUEST_BYTES,
    ErrorCode,
    Reply,
    RequestError,
    decode_request,
    encode_reply,
    request_fingerprint,
)
from daemon.ipc.curve import (
    ClientKeyAuthenticator,
    CurveServerSettings,
    apply_server_keys,
    ensure_server_keys,
    prepare_bind,
)
from daemon.ipc.envelope import recv_parts, split_envelope
from daemon.ipc.reply_cache import DEFAULT_REPLY_CACHE, DEFAULT_REPLY_CACHE_BYTES, ReplyCache
from daemon.log import get_logger
from daemon.run_manager import RunManager

log = get_logger("control_server")

DEFAULT_MAX_QUEUED = 32
_DRAIN_BATCH = 256
_POLL_MS = 100
_RESULT_LINGER_MS = 1000
_COUNTERS = ("received", "replied", "dropped_replies", "cache_hits", "retries_joined")


@dataclass(frozen=True, slots=True)
class ServerStats:
    """A snapshot of the server's counters."""

    received: int = 0
    replied: int = 0
    dropped_replies: int = 0
    cache_hits: int = 0
    retries_joined: int = 0
    pending: int = 0
    cached: int = 0
    cached_bytes: int = 0
    errors: Mapping[str, int] = field(default_factory=dict)


@dataclass(slots=True)
class _Pending:
    fingerprint: str
    envelopes: list[list[bytes]]


@dataclass(frozen=True, slots=True)
class _Job:
    key: str
    prepared: Prepared


class ControlServer:
    """Serves the control protocol on ``endpoint`` for ``manager`` (see the module notes)."""

    def __init__(
        self,
        endpoint: str,
        manager: RunManager,
        *,
        curve: CurveServerSettings | None = None,
        max_request_bytes: int = MAX_REQUEST_BYTES,
        reply_cache_size: int = DEFAULT_REPLY_CACHE,
        reply_cache_bytes: int = DEFAULT_REPLY_CACHE_BYTES,
        max_queued: int = DEFAULT_MAX_QUEUED,
        close_timeout_s: float = 5.0,
    ) -> None:
        if max_request_bytes < 1024:
            raise ConfigError(f"max_request_bytes must be >= 1024. Got {max_request_bytes} instead.")
        if reply_cache_size < 1 or max_queued < 1:
            raise ConfigError(f"reply_cache_size and max_queued must be >= 1. Got {reply_cache_size}, {max_queued}.")
        self._requested_endpoint = endpoint
        self._curve = curve
        self._max_request_bytes = max_request_bytes
        self._close_timeout_s = close_timeout_s
        if reply_cache_bytes < 1:
            raise ConfigError(f"reply_cache_bytes must be >= 1. Got {reply_cache_bytes} instead.")
        self._cache = ReplyCache(reply_cache_size, reply_cache_bytes)
        self._pending: dict[str, _Pending] = {}
        self._jobs: queue.Queue[_Job | None] = queue.Queue(maxsize=max_queued)
        self._counts: collections.Counter[str] = collections.Counter()
        self._errors: collections.Counter[str] = collections.Counter()
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
        self._results_endpoint = f"inproc://acqd-control-results-{id(self)}"
        self._router: zmq.Socket[bytes] | None = None
        self._results: zmq.Socket[bytes] | None = None
        self._auth: ClientKeyAuthenticator | None = None
        self._threads: list[threading.Thread] = []
        self._endpoint = ""
        self._started_at = 0.0
        self._closed = False
        self._command_ctx = CommandContext(manager=manager, server_info=self.info, reload_hook=self._reload_keys)

    # lifecycle ---------------------------------------------------------------------------------------------------
    def start(self) -> str:
        """Check the bind policy, bind, start the loop and worker threads; returns the bound endpoint."""
        if self._closed:
            raise UnavailableError("the control server is closed; create a new one.")
        if self._threads:
            return self._endpoint
        try:
            self._bind()
        except BaseException:
            self.close()
            raise
        self._started_at = time.time()
        self._threads = [
            threading.Thread(target=self._loop, name="acqd-control-loop", daemon=True),
            threading.Thread(target=self._work, name="acqd-control-worker", daemon=True),
        ]
        for thread in self._threads:
            thread.start()
        log.info("control_server_started", endpoint=self._endpoint, curve=self._curve is not None)
        return self._endpoint

    def _bind(self) -> None:
        prepare_bind(self._requested_endpoint, secure=self._curve is not None)
        router = self._router = self._ctx.socket(zmq.ROUTER)
        router.linger = 0
        router.setsockopt(zmq.ROUTER_MANDATORY, 1)
        router.setsockopt(zmq.MAXMSGSIZE, 2 * self._max_request_bytes)
        if self._curve is not None:
            apply_server_keys(router, ensure_server_keys(self._curve.keys_dir))
            self._auth = ClientKeyAuthenticator(self._ctx, self._curve.clients_dir)
        try:
            router.bind(self._requested_endpoint)
        except zmq.ZMQError as exc:
            raise ConfigError(f"cannot bind control endpoint {self._requested_endpoint!r}: {exc}") from exc
        self._endpoint = router.getsockopt_string(zmq.LAST_ENDPOINT)
        self._results = self._ctx.socket(zmq.PULL)
        self._results.linger = 0
        self._results.bind(self._results_endpoint)

    @property
    def endpoint(self) -> str:
        """The bound endpoint (with the real port when bound to port 0 or ``*``); empty before ``start``."""
        return self._endpoint

    def close(self) -> None:
        """Stop serving and release sockets and threads; idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._closing.set()
        if self._threads:
            self._post_result([b"wake"])  # end the loop's poll now rather than at its timeout
        for thread in self._threads:
            if thread.name == "acqd-control-loop":
                thread.join(timeout=self._close_timeout_s)
        self._wake_worker()
        for thread in self._threads:
            thread.join(timeout=self._close_timeout_s)
            if thread.is_alive():
                log.warning("control_thread_stuck", thread=thread.name, timeout_s=self._close_timeout_s)
        for sock in (self._router, self._results):
            if sock is not None:
                sock.close(linger=0)
        if self._auth is not None:
            self._auth.close()
        self._ctx.term()
        log.info("control_server_stopped", endpoint=self._endpoint, **self._count_fields())

    def __enter__(self) -> ControlServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # introspection -----------------------------------------------------------------------------------------------
    def stats(self) -> ServerStats:
        with self._lock:
            counts = {name: self._counts.get(name, 0) for name in _COUNTERS}
            errors = dict(self._errors)
        return ServerStats(
            **counts,
            pending=len(self._pending),
            cached=len(self._cache),
            cached_bytes=self._cache.nbytes,
            errors=errors,
        )

    def info(self) -> Mapping[str, Any]:
        """The server's facts for ``hello`` and ``status``."""
        return {
            "endpoint": self._endpoint,
            "curve": self._curve is not None,
            "started_at": self._started_at,
            "uptime_s": round(time.time() - self._started_at, 3),
            "max_request_bytes": self._max_request_bytes,
            "requests": self._count_fields(),
        }

    # loop thread -------------------------------------------------------------------------------------------------
    def _loop(self) -> None:
        assert self._router is not None
        assert self._results is not None
        poller = zmq.Poller()
        poller.register(self._router, zmq.POLLIN)
        poller.register(self._results, zmq.POLLIN)
        while not self._closing.is_set():
            ready = dict(poller.poll(_POLL_MS))
            if self._router in ready:
                self._drain(self._router, self._on_message)
            if self._results in ready:
                self._drain(self._results, self._on_result)

    def _drain(self, sock: zmq.Socket[bytes], handler: Callable[[list[bytes], int], None]) -> None:
        for _ in range(_DRAIN_BATCH):
            try:
                parts, extra = recv_parts(sock)
            except zmq.Again:
                return
            try:
                handler(parts, extra)
            except Exception as exc:  # a bug must cost one request, never the server: log it and go on
                log.error("control_message_failed", exc_info=exc)
                self._bump("internal_failures")

    def _on_message(self, parts: list[bytes], extra: int) -> None:
        self._bump("received")
        envelope, body, count = split_envelope(parts, extra)
        if body is None:
            message = f"a request is exactly one JSON part after the routing envelope; got {count} parts."
            self._send(envelope, self._encode(Reply.failure(None, ErrorCode.BAD_REQUEST, message)))
            return
        self._on_request(envelope, body)

    def _on_request(self, envelope: list[bytes], payload: bytes) -> None:
        try:
            request = decode_request(payload, self._max_request_bytes)
        except RequestError as exc:
            self._send(envelope, self._encode(Reply.failure(exc.request_id, exc.code, str(exc))))
            return
        key = json.dumps(request.id)
        fingerprint = request_fingerprint(request)
        if self._answer_known(key, fingerprint, envelope, request.id):
            return
        prepared = prepare(request)
        if isinstance(prepared, Reply):
            self._finish(key, fingerprint, prepared, [envelope])
        elif prepared.inline:
            self._finish(key, fingerprint, execute(self._command_ctx, prepared), [envelope])
        else:
            self._enqueue(key, fingerprint, prepared, envelope)

    def _answer_known(self, key: str, fingerprint: str, envelope: list[bytes], request_id: Any) -> bool:
        """Answer a retry from the cache or attach it to its running original; True when handled."""
        cached = self._cache.get(key)
        pending = self._pending.get(key)
        known = cached[0] if cached is not None else pending.fingerprint if pending is not None else None
        if known is None:
            return False
        if known != fingerprint:
            message = f"request id {request_id!r} was already used for a different request; use a fresh id."
            self._send(envelope, self._encode(Reply.failure(request_id, ErrorCode.CONFLICT, message)))
        elif cached is not None:
            self._bump("cache_hits")
            self._send(envelope, cached[1])
        elif pending is not None:
            self._bump("retries_joined")
            pending.envelopes.append(envelope)
        return True

    def _enqueue(self, key: str, fingerprint: str, prepared: Prepared, envelope: list[bytes]) -> None:
        try:
            self._jobs.put_nowait(_Job(key=key, prepared=prepared))
        except queue.Full:
            message = f"{prepared.command.name}: the daemon is busy ({self._jobs.maxsize} commands waiting); retry."
            self._send(envelope, self._encode(Reply.failure(prepared.request.id, ErrorCode.UNAVAILABLE, message)))
            return
        self._pending[key] = _Pending(fingerprint=fingerprint, envelopes=[envelope])

    def _on_result(self, parts: list[bytes], extra: int) -> None:
        if len(parts) != 3:
            return  # the wake-up sent by close()
        key, cacheable, data = parts[0].decode(), parts[1] == b"1", parts[2]
        pending = self._pending.pop(key)
        if cacheable:
            self._cache.put(key, pending.fingerprint, data)
        for envelope in pending.envelopes:
            self._send(envelope, data)

    def _finish(self, key: str, fingerprint: str, reply: Reply, envelopes: list[list[bytes]]) -> None:
        data = self._encode(reply)
        if _cacheable(reply):
            self._cache.put(key, fingerprint, data)
        for envelope in envelopes:
            self._send(envelope, data)

    def _send(self, envelope: list[bytes], data: bytes) -> None:
        assert self._router is not None
        try:
            self._router.send_multipart([*envelope, data], flags=zmq.NOBLOCK)
        except zmq.ZMQError as exc:  # EHOSTUNREACH (client gone) or EAGAIN (client not reading): drop, count
            self._bump("dropped_replies")
            log.debug("control_reply_dropped", error=exc.strerror)
            return
        self._bump("replied")

    # worker thread -----------------------------------------------------------------------------------------------
    def _work(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None or self._closing.is_set():
                return
            reply = execute(self._command_ctx, job.prepared)
            data = self._encode(reply)
            self._post_result([job.key.encode(), b"1" if _cacheable(reply) else b"0", data])

    def _post_result(self, parts: list[bytes]) -> None:
        try:
            sock = self._ctx.socket(zmq.PUSH)
        except zmq.ZMQError:  # the context was terminated: the server closed while this command ran
            return
        try:
            sock.linger = _RESULT_LINGER_MS
            sock.connect(self._results_endpoint)
            sock.send_multipart(parts)
        finally:
            sock.close()

    def _wake_worker(self) -> None:
        # A full queue needs no sentinel: the worker's next get() returns a job, sees ``_closing`` and exits.
        with contextlib.suppress(queue.Full):
            self._jobs.put_nowait(None)

    # helpers -----------------------------------------------------------------------------------------------------
    def _encode(self, reply: Reply) -> bytes:
        if reply.error is not None:
            with self._lock:
                self._errors[reply.error.code] += 1
        try:
            return encode_reply(reply)
        except ProtocolError as exc:
            log.error("control_result_not_json", request_id=reply.id, error=str(exc))
            return self._encode(Reply.failure(reply.id, ErrorCode.INTERNAL, "the result could not be encoded."))

    def _reload_keys(self) -> Mapping[str, Any]:
        if self._auth is None:
            return {"curve": False}
        return {"curve": True, "allowed_client_keys": self._auth.reload()}

    def _bump(self, name: str) -> None:
        with self._lock:
            self._counts[name] += 1

    def _count_fields(self) -> dict[str, int]:
        with self._lock:
            return {**self._counts, "errors": sum(self._errors.values())}


def _cacheable(reply: Reply) -> bool:
    return reply.error is None or reply.error.code != ErrorCode.UNAVAILABLE.value
