"""``acqd serve``: the daemon's main loop — sockets, signals, systemd notifications, watchdog, shutdown.

Start-up: read the configuration, configure logs, create the runtime folder, bind the events socket, load the
profiles, bind the control socket, then tell systemd ``READY=1`` (so a client that sees the unit active can
connect at once). A bind the security policy forbids (a non-local endpoint without CURVE) or any other
configuration error stops the daemon before it is ready, with the reason on stderr and in the log, exit status 1.

Main loop (the main thread): waits for signals with a short timeout; every turn it moves finished runs to the
history, refreshes ``STATUS=`` when the number of runs changed, leaves a heartbeat in the run journal (when the
daemon was last alive, for the recovery after a crash; the first one at start-up, before the control socket is
bound) and pings the watchdog when due. Pings come only
from this loop, so a hung loop stops pinging and systemd restarts the daemon.

Signals: SIGHUP re-reads the profile folder (``RELOADING=1`` ... ``READY=1``). SIGTERM and SIGINT shut down: new
runs are refused, ``STOPPING=1``, every run is asked to stop exactly as ``stop`` asks it (stores are finalised),
the loop keeps pinging the watchdog while it waits up to ``runs.stop_timeout_s``, runs still going are then
aborted (their stores stay readable), the sockets close and the exit status is 0. A second SIGTERM/SIGINT during
shutdown aborts the remaining runs at once.

Design notes:
- Signal handlers do nothing but wake the loop: ``signal.set_wakeup_fd`` writes the signal number to a socket pair
  the loop selects on, so no lock or log call ever runs inside a handler.
- One daemon per runtime folder: ``acqd.lock`` in it is held (``flock``) while the daemon runs.
- The control server keeps answering during shutdown (``status`` shows the runs finishing; ``start`` is
  ``unavailable``) and closes last.
- Crash recovery: the run journal lives in the state folder (:func:`daemon.run_journal.default_state_dir`:
  ``$STATE_DIRECTORY`` under systemd, else the runtime folder). At start the runs a previous daemon left running
  are recovered in the background (:meth:`RunHost.recover_interrupted`); a state folder that cannot be created
  only disables the journal (logged), it never stops the daemon.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import select
import signal
import socket
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import FrameType

from daemon.config import DaemonSettings, ensure_runtime_dir, load_config, resolve
from daemon.errors import ConfigError
from daemon.events_observer import EventsObserver
from daemon.ipc.control_server import ControlServer
from daemon.ipc.events import EventPublisher
from daemon.log import configure, get_logger
from daemon.manager import RunHost
from daemon.notify import Notifier
from daemon.profile_catalog import ProfileCatalog
from daemon.run_journal import RunJournal, default_state_dir
from daemon.strict_yaml import DocumentError

log = get_logger("serve")

EXIT_OK = 0
EXIT_CONFIG = 1
LOOP_TICK_S = 0.5
ABORT_GRACE_S = 10.0
LOCK_NAME = "acqd.lock"
_SHUTDOWN_SIGNALS = (signal.SIGTERM, signal.SIGINT)
_HANDLED_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


class Daemon:
    """One serving daemon: its publisher, profiles, runs and control server (see the module notes)."""

    def __init__(self, settings: DaemonSettings, notifier: Notifier, state_dir: Path | None = None) -> None:
        self.settings = settings
        self.notifier = notifier
        self.state_dir = state_dir
        self.publisher: EventPublisher | None = None
        self.server: ControlServer | None = None
        self.host: RunHost | None = None
        self._status = ""
        self._stopping = False
        self._lock_fd: int | None = None

    def open(self) -> None:
        """Bind the sockets and load the profiles; raises ConfigError (nothing is left open then)."""
        settings = self.settings
        config = settings.config
        try:
            ensure_runtime_dir(settings)
            self._lock_fd = lock_runtime_dir(settings.runtime_dir)
            self.publisher = EventPublisher(
                settings.events_endpoint,
                curve=settings.curve,
                preview_max_hz=config.events.preview_max_hz,
                preview_max_px=config.events.preview_max_px,
            )
            catalog = ProfileCatalog(settings.profiles_dir, settings.data_root, config.s3, config.runs)
            catalog.reload()
            log_format = "json" if config.log.format == "auto" else config.log.format
            self.host = RunHost(
                catalog,
                config.runs,
                observer=EventsObserver(self.publisher),
                runtime_dir=settings.runtime_dir,
                log_format=log_format,
                log_level=config.log.level,
                journal=self._open_journal(),
            )
            self.host.recover_interrupted()  # reads the last daemon's heartbeat, so only now ...
            self.host.heartbeat()  # ... is ours written: alive from before the first client can start a run
            self.server = ControlServer(
                settings.control_endpoint, self.host, curve=settings.curve, max_queued=config.control.max_queued
            )
            self.server.start()
        except BaseException:
            self.close()
            raise

    def _open_journal(self) -> RunJournal | None:
        if self.state_dir is None:
            return None
        try:
            return RunJournal(self.state_dir)
        except OSError as exc:
            log.warning("run_journal_unavailable", state_dir=str(self.state_dir), error=str(exc))
            return None

    def serve_forever(self, wakeup: socket.socket) -> int:
        """The main loop until SIGTERM/SIGINT, then the graceful shutdown; returns the exit status."""
        assert self.host is not None
        assert self.server is not None
        assert self.publisher is not None
        self.notifier.ready(self._status_line())
        log.info(
            "serve_ready",
            control=self.server.endpoint,
            events=self.publisher.endpoint,
            profiles=str(self.settings.profiles_dir),
            data_root=str(self.settings.data_root),
            curve=self.settings.curve is not None,
        )
        while True:
            received = _wait_signals(wakeup, self._tick_s())
            if any(sig in _SHUTDOWN_SIGNALS for sig in received):
                break
            if signal.SIGHUP in received:
                self._reload()
            self._housekeeping()
        self._shutdown(wakeup)
        return EXIT_OK

    def _reload(self) -> None:
        assert self.host is not None
        self.notifier.reloading()
        try:
            result = self.host.reload()
        except OSError as exc:  # the folder vanished or is unreadable: keep serving the profiles already loaded
            log.error("serve_reload_failed", signal="SIGHUP", error=str(exc))
        else:
            log.info("serve_reloaded", signal="SIGHUP", profiles=len(result.get("profiles", ())))
        finally:
            self.notifier.ready(self._status_line())

    def _housekeeping(self) -> None:
        assert self.host is not None
        self.host.heartbeat()
        line = self._status_line()
        if line != self._status:
            self._status = line
            self.notifier.status(line)
        if self.notifier.watchdog_due():
            self.notifier.ping_watchdog()

    def _status_line(self) -> str:
        assert self.host is not None
        live, finished = self.host.sweep()
        state = "stopping" if self._stopping else "serving"
        return f"{state}: {live} run(s) live, {finished} finished"

    def _tick_s(self) -> float:
        interval = self.notifier.watchdog_interval_s
        return LOOP_TICK_S if interval is None else min(LOOP_TICK_S, interval / 4)

    def _shutdown(self, wakeup: socket.socket) -> None:
        assert self.host is not None
        host = self.host
        self._stopping = True
        host.begin_shutdown()
        self.notifier.stopping(self._status_line())
        stopping = host.stop_all()
        log.info("serve_stopping", runs=stopping, timeout_s=self.settings.runs.stop_timeout_s)
        finished = self._wait_runs(wakeup, self.settings.runs.stop_timeout_s, abort_on_signal=True)
        if not finished:
            aborted = host.abort_all()
            log.warning("serve_aborting_runs", runs=aborted, reason="stop_timeout")
            finished = self._wait_runs(wakeup, ABORT_GRACE_S, abort_on_signal=False)
        if not finished:
            unfinished = [status.run_id for status in host.runs() if not status.state.terminal]
            log.error("serve_runs_unfinished", runs=unfinished)
        self.close()
        log.info("serve_stopped", runs_finished=finished)

    def _wait_runs(self, wakeup: socket.socket, timeout_s: float, *, abort_on_signal: bool) -> bool:
        """Wait for every run to finish, pinging the watchdog; a further SIGTERM/SIGINT aborts them."""
        assert self.host is not None
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.host.wait_all(min(self._tick_s(), max(0.0, deadline - time.monotonic()))):
                return True
            received = _wait_signals(wakeup, 0)
            if abort_on_signal and any(sig in _SHUTDOWN_SIGNALS for sig in received):
                log.warning("serve_aborting_runs", runs=self.host.abort_all(), reason="second_signal")
            self._housekeeping()
        return self.host.wait_all(0)

    def close(self) -> None:
        """Close the control server, then the publisher, then release the runtime folder; idempotent."""
        server, self.server = self.server, None
        publisher, self.publisher = self.publisher, None
        if server is not None:
            server.close()
        if publisher is not None:
            publisher.close()
        lock_fd, self._lock_fd = self._lock_fd, None
        if lock_fd is not None:
            os.close(lock_fd)  # releases the runtime folder's lock


def serve(config_path: Path | None, environ: Mapping[str, str] | None = None) -> int:
    """Run the daemon until SIGTERM/SIGINT; returns the exit status (1 when it refuses to start)."""
    try:
        settings = resolve(load_config(config_path), environ)
    except DocumentError as exc:
        print(f"acqd serve: invalid configuration:\n{exc}", file=sys.stderr)
        return EXIT_CONFIG
    configure(settings.config.log.format, settings.config.log.level)
    notifier = Notifier(environ)
    with _signal_wakeup() as wakeup:
        daemon = Daemon(settings, notifier, default_state_dir(settings.runtime_dir, environ))
        try:
            daemon.open()
        except (ConfigError, OSError) as exc:
            log.error("serve_refused", error=str(exc), error_type=type(exc).__name__)
            print(f"acqd serve: refusing to start: {exc}", file=sys.stderr)
            notifier.close()
            return EXIT_CONFIG
        try:
            return daemon.serve_forever(wakeup)
        finally:
            daemon.close()
            notifier.close()


def lock_runtime_dir(runtime: Path) -> int:
    """Take the runtime folder's lock, or raise ConfigError: one daemon per folder (binding an ``ipc://`` endpoint
    replaces the socket file, so a second daemon would silently take over the first one's sockets)."""
    path = runtime / LOCK_NAME
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError as exc:
        holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
        os.close(fd)
        raise ConfigError(
            f"another acqd serve (pid {holder}) is running with the runtime folder {runtime}: stop it first, or "
            "give this daemon another runtime folder ($RUNTIME_DIRECTORY)."
        ) from exc
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd


@contextlib.contextmanager
def _signal_wakeup() -> Iterator[socket.socket]:
    """Route SIGTERM/SIGINT/SIGHUP to a socket the main loop reads (handlers do nothing else)."""
    reader, writer = socket.socketpair()
    reader.setblocking(False)
    writer.setblocking(False)
    previous = {sig: signal.signal(sig, _ignore_in_handler) for sig in _HANDLED_SIGNALS}
    old_fd = signal.set_wakeup_fd(writer.fileno(), warn_on_full_buffer=False)
    try:
        yield reader
    finally:
        signal.set_wakeup_fd(old_fd)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        reader.close()
        writer.close()


def _ignore_in_handler(signum: int, frame: FrameType | None) -> None:
    """The Python-level handler: the wake-up fd already carries the signal number."""


def _wait_signals(wakeup: socket.socket, timeout_s: float) -> set[int]:
    """The signals received within ``timeout_s`` (empty when none)."""
    ready, _, _ = select.select([wakeup], [], [], timeout_s)
    if not ready:
        return set()
    received: set[int] = set()
    with contextlib.suppress(BlockingIOError):
        while data := wakeup.recv(64):
            received.update(data)
    return received
