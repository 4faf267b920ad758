"""The sd_notify client against a real AF_UNIX datagram socket standing in for systemd."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from daemon.notify import Notifier


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[tuple[socket.socket, str]]:
    path = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(2)
    yield sock, path
    sock.close()


def test_ready_sends_one_datagram_with_ready_and_status(notify_socket: tuple[socket.socket, str]) -> None:
    sock, path = notify_socket
    notifier = Notifier({"NOTIFY_SOCKET": path})
    assert notifier.ready("profiles loaded")
    assert sock.recv(4096).decode().splitlines() == ["READY=1", "STATUS=profiles loaded"]
    notifier.close()


def test_abstract_socket_names_are_supported() -> None:
    name = f"acqd-test-{os.getpid()}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(b"\0" + name.encode())
    sock.settimeout(2)
    try:
        notifier = Notifier({"NOTIFY_SOCKET": "@" + name})
        assert notifier.stopping()
        assert b"STOPPING=1" in sock.recv(4096)
        notifier.close()
    finally:
        sock.close()


def test_without_notify_socket_every_call_is_a_no_op() -> None:
    notifier = Notifier({})
    assert not notifier.enabled
    assert not notifier.ready()
    assert not notifier.ping_watchdog()
    assert not notifier.watchdog_due()


def test_watchdog_interval_and_due(notify_socket: tuple[socket.socket, str]) -> None:
    sock, path = notify_socket
    notifier = Notifier({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "4000000", "WATCHDOG_PID": str(os.getpid())})
    assert notifier.watchdog_interval_s == 4.0
    assert notifier.watchdog_due()
    assert notifier.ping_watchdog()
    assert sock.recv(4096) == b"WATCHDOG=1"
    assert not notifier.watchdog_due()
    assert notifier.watchdog_due(now=10**9)
    notifier.close()


def test_watchdog_for_another_pid_is_ignored(tmp_path: Path) -> None:
    notifier = Notifier({"WATCHDOG_USEC": "1000000", "WATCHDOG_PID": "1"})
    assert notifier.watchdog_interval_s is None


def test_close_is_idempotent(notify_socket: tuple[socket.socket, str]) -> None:
    _, path = notify_socket
    notifier = Notifier({"NOTIFY_SOCKET": path})
    notifier.close()
    notifier.close()
    assert not notifier.ready()


def test_a_vanished_systemd_is_not_fatal(tmp_path: Path) -> None:
    notifier = Notifier({"NOTIFY_SOCKET": str(tmp_path / "gone.sock")})
    assert notifier.enabled
    assert not notifier.ready()
    notifier.close()
