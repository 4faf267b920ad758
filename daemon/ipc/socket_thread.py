"""One ZeroMQ socket and the one I/O thread that uses it: the skeleton shared by the frame sender and receiver.

Design notes:
- ZeroMQ sockets are not thread-safe. The socket is created (and bound or connected, so errors reach the caller)
  in the constructor, may be used by the caller until :meth:`SocketThread.start`, and from then on only by the
  I/O thread, which closes it (with ``linger_ms``) when it ends.
- The loop: ``step(now)`` (send what is due), then poll the socket and the :class:`Waker` for at most
  ``poll_s``, then ``on_readable()`` when the socket has messages. Other threads change shared state under their
  owner's lock and call ``wake()``. After ``close()`` the loop runs ``step`` one last time and exits.
- An exception escaping the loop is kept in :attr:`error` and handed to ``on_error`` (the owner decides what the
  failure means for its books); it never kills the thread silently.
- ``close()`` is idempotent and bounded: it joins the thread up to a timeout, then closes the waker and, when the
  context is ours, terminates it (which also proves no socket was left open).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import zmq

from daemon.errors import ConfigError
from daemon.ipc.waker import Waker

Context = zmq.Context[zmq.Socket[bytes]]


class SocketThread:
    """A socket of ``kind`` bound (``bind=True``) or connected to ``endpoint``, served by one named thread."""

    def __init__(
        self,
        kind: int,
        endpoint: str,
        *,
        bind: bool,
        name: str,
        linger_ms: int,
        options: dict[int, int] | None = None,
        context: Context | None = None,
    ) -> None:
        self._own_context = context is None
        self._context: Context = context if context is not None else zmq.Context()
        self._waker = Waker()
        self._linger_ms = linger_ms
        self._closed = False
        self.error: Exception | None = None
        self.socket = self._context.socket(kind)
        try:
            self.socket.setsockopt(zmq.LINGER, linger_ms)
            for option, value in (options or {}).items():
                self.socket.setsockopt(option, value)
            if bind:
                self.socket.bind(endpoint)
            else:
                self.socket.connect(endpoint)
        except zmq.ZMQError as exc:
            self.socket.close(linger=0)
            self._release()
            verb = "bound" if bind else "connected"
            raise ConfigError(f"endpoint {endpoint!r} cannot be {verb}: {exc}.") from exc
        self.endpoint: str = self.socket.getsockopt_string(zmq.LAST_ENDPOINT) if bind else endpoint
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._step: Callable[[float], None] = lambda _now: None
        self._on_readable: Callable[[], None] = lambda: None
        self._on_error: Callable[[Exception], None] = lambda _exc: None
        self._poll_ms = 50

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def context_closed(self) -> bool:
        return bool(self._context.closed)

    def start(
        self,
        step: Callable[[float], None],
        on_readable: Callable[[], None],
        on_error: Callable[[Exception], None],
        poll_s: float,
    ) -> None:
        self._step, self._on_readable, self._on_error = step, on_readable, on_error
        self._poll_ms = max(1, int(poll_s * 1000))
        self._thread.start()

    def wake(self) -> None:
        self._waker.wake()

    def close(self, timeout_s: float) -> bool:
        """Stop the thread and release everything; False if the thread did not stop in time. Idempotent."""
        if self._closed:
            return True
        self._closed = True
        self._waker.wake()
        if self._thread.ident is None:
            self.socket.close(linger=0)
        else:
            self._thread.join(timeout_s)
            if self._thread.is_alive():
                return False
        self._release()
        return True

    def _release(self) -> None:
        self._waker.close()
        if self._own_context:
            self._context.term()

    def _run(self) -> None:
        poller = zmq.Poller()
        poller.register(self.socket, zmq.POLLIN)
        poller.register(self._waker.fd, zmq.POLLIN)
        try:
            while not self._closed:
                self._step(time.monotonic())
                events = dict(poller.poll(self._poll_ms))
                if self.socket in events:
                    self._on_readable()
                if self._waker.fd in events:
                    self._waker.clear()
            self._step(time.monotonic())
        except Exception as exc:  # kept and handed to the owner (its callers re-raise it), never silent
            self.error = exc
            self._on_error(exc)
        finally:
            self.socket.close(linger=self._linger_ms)
