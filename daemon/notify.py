"""systemd's notify protocol (``Type=notify``): readiness, watchdog pings, status and stopping.

The protocol is one datagram of ``KEY=VALUE`` lines to the AF_UNIX socket named by ``$NOTIFY_SOCKET`` (a path, or
an abstract name when it starts with ``@``). No dependency is needed. Without ``$NOTIFY_SOCKET`` (not run by
systemd) every call is a no-op, so the daemon runs the same in a terminal.

Design notes:
- :class:`Notifier` owns the socket and is idempotent to close.
- The watchdog interval comes from ``$WATCHDOG_USEC`` (and ``$WATCHDOG_PID`` when set must be our pid); the daemon's
  main loop calls :meth:`Notifier.watchdog_due` / :meth:`Notifier.ping_watchdog` so a hung loop stops pinging.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Mapping

from daemon.log import get_logger

log = get_logger("notify")


class Notifier:
    """Sends sd_notify messages when run under systemd; does nothing otherwise."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        self._address = _parse_address(env.get("NOTIFY_SOCKET", ""))
        self._sock: socket.socket | None = None
        if self._address is not None:
            self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        self.watchdog_interval_s = _watchdog_interval(env)
        self._last_ping = 0.0

    @property
    def enabled(self) -> bool:
        return self._sock is not None

    def send(self, **fields: str | int) -> bool:
        """Send ``KEY=VALUE`` fields (keys upper-cased); True when a datagram was sent."""
        if self._sock is None or self._address is None:
            return False
        payload = "\n".join(f"{key.upper()}={value}" for key, value in fields.items()).encode()
        try:
            self._sock.sendto(payload, self._address)
        except OSError as exc:  # systemd gone or socket full: never fatal for the daemon
            log.warning("notify_failed", error=str(exc))
            return False
        return True

    def ready(self, status: str = "ready") -> bool:
        return self.send(ready=1, status=status)

    def stopping(self, status: str = "stopping") -> bool:
        return self.send(stopping=1, status=status)

    def reloading(self) -> bool:
        return self.send(reloading=1, monotonic_usec=time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000)

    def status(self, text: str) -> bool:
        return self.send(status=text)

    def watchdog_due(self, now: float | None = None) -> bool:
        """True when a watchdog ping is due (half the interval has passed)."""
        if self.watchdog_interval_s is None:
            return False
        current = time.monotonic() if now is None else now
        return current - self._last_ping >= self.watchdog_interval_s / 2

    def ping_watchdog(self) -> bool:
        self._last_ping = time.monotonic()
        return self.send(watchdog=1)

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


def _parse_address(value: str) -> str | bytes | None:
    if not value:
        return None
    if value.startswith("@"):
        return b"\0" + value[1:].encode()
    if value.startswith("/"):
        return value
    log.warning("notify_socket_ignored", notify_socket=value, reason="neither a path nor an abstract name")
    return None


def _watchdog_interval(env: Mapping[str, str]) -> float | None:
    usec = env.get("WATCHDOG_USEC", "")
    pid = env.get("WATCHDOG_PID", "")
    if not usec.isdigit() or int(usec) == 0:
        return None
    if pid and pid != str(os.getpid()):
        return None
    return int(usec) / 1_000_000
