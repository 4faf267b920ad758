"""A wake-up pipe that a ZeroMQ poller can watch: how other threads nudge a socket-owning I/O thread.

Design notes:
- ZeroMQ sockets belong to one thread. Other threads leave their request in shared state (under the owner's lock)
  and call :meth:`Waker.wake`; the I/O thread polls :attr:`Waker.fd` next to its socket and calls
  :meth:`Waker.clear` when it fires. The pipe is level-triggered, so a wake between "checked the state" and
  "started polling" is never lost.
- Both ends are non-blocking: a full pipe already means "wake up", so a wake that does not fit is not needed.
- ``wake`` and ``close`` share a lock, so a late ``wake`` never writes to a closed (and maybe reused) descriptor.
"""

from __future__ import annotations

import contextlib
import os
import threading


class Waker:
    """A self-pipe; ``close()`` is idempotent."""

    def __init__(self) -> None:
        self._read_fd, self._write_fd = os.pipe()
        os.set_blocking(self._read_fd, False)
        os.set_blocking(self._write_fd, False)
        self._closed = False
        self._lock = threading.Lock()

    @property
    def fd(self) -> int:
        """The end to poll for POLLIN."""
        return self._read_fd

    @property
    def closed(self) -> bool:
        return self._closed

    def wake(self) -> None:
        with self._lock:
            if self._closed:
                return
            # a full pipe means a wake-up is already pending, which is all this call asks for
            with contextlib.suppress(BlockingIOError):
                os.write(self._write_fd, b"\x01")

    def clear(self) -> None:
        """Consume pending wake-ups (call from the polling thread)."""
        # BlockingIOError once drained is the expected way out of the loop
        with contextlib.suppress(BlockingIOError):
            while os.read(self._read_fd, 4096):
                pass

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            os.close(self._read_fd)
            os.close(self._write_fd)
