"""The private ipc folder of a local worker: a killed run's folder is swept by the next run, nothing else is."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from daemon.ipc.endpoint import IPC_PREFIX, SOCKET_NAME, PrivateIpcFolder, sweep_stale

_HOLDER = """
import sys, time
from daemon.ipc.endpoint import PrivateIpcFolder
from daemon.ipc.frame_sender import FrameSender
from daemon.ipc.stream_settings import SenderSettings
folder = PrivateIpcFolder(sys.argv[1])
sender = FrameSender(SenderSettings(folder.endpoint, "run"))
print("PATH", folder.path, flush=True)
time.sleep(60)
"""


@pytest.fixture
def parent() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="sweep-"))  # short: a socket path has at most 107 bytes
    yield path
    shutil.rmtree(path, ignore_errors=True)


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def folder_of(parent: Path, pid: int, suffix: str, with_socket: bool = True) -> Path:
    path = parent / f"{IPC_PREFIX}{pid}-{suffix}"
    path.mkdir(mode=0o700)
    if with_socket:  # a socket file nobody listens on, as a killed process leaves it
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.bind(os.fspath(path / SOCKET_NAME))
        sock.close()
    return path


def test_a_killed_runs_folder_is_swept_by_the_next_one(parent: Path) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(parent)], stdout=subprocess.PIPE, text=True, cwd=os.getcwd()
    )
    try:
        assert holder.stdout is not None
        line = holder.stdout.readline()
        while line and not line.startswith("PATH "):  # its log lines come first
            line = holder.stdout.readline()
        left = Path(line.removeprefix("PATH ").strip())
        assert (left / SOCKET_NAME).exists()
        kept = PrivateIpcFolder(parent)  # its owner is alive and listening: kept
        assert left.exists()
        kept.close()
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(10)
        if holder.stdout is not None:
            holder.stdout.close()
    assert left.name.startswith(f"{IPC_PREFIX}{holder.pid}-")
    assert (left / SOCKET_NAME).exists()  # SIGKILL: nothing cleaned up
    with capture_logs() as logs:
        folder = PrivateIpcFolder(parent)
    assert not left.exists()
    assert folder.path.exists()
    assert [e for e in logs if e["event"] == "ipc_folders_swept"] == [
        {
            "event": "ipc_folders_swept",
            "log_level": "info",
            "folder": str(parent),
            "count": 1,
            "names": [left.name],
            "component": "daemon.ipc.endpoint",
        }
    ]
    folder.close()
    assert os.listdir(parent) == []


def test_a_dead_pids_empty_folder_and_its_dead_socket_go(parent: Path) -> None:
    pid = dead_pid()
    empty = folder_of(parent, pid, "empty000", with_socket=False)
    dead = folder_of(parent, pid, "dead0000")
    assert sorted(sweep_stale(parent)) == sorted([empty, dead])
    assert os.listdir(parent) == []


def test_nothing_but_a_dead_runs_own_folder_is_touched(parent: Path) -> None:
    pid = dead_pid()
    extra = folder_of(parent, pid, "extra000")
    (extra / "notes.txt").write_text("not ours to delete")
    alive = folder_of(parent, os.getpid(), "alive000")
    older = parent / "acqd-k3j4h5g6"  # the older naming carries no pid
    older.mkdir()
    target = parent / "elsewhere"
    target.mkdir()
    link = parent / f"{IPC_PREFIX}{pid}-link0000"
    link.symlink_to(target)
    not_a_socket = parent / f"{IPC_PREFIX}{pid}-file0000"
    not_a_socket.mkdir(mode=0o700)  # private, so the regular file is what keeps it
    (not_a_socket / SOCKET_NAME).write_text("a regular file")
    listening = folder_of(parent, pid, "listen00", with_socket=False)  # a live run whose pid means nothing here
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        server.bind(os.fspath(listening / SOCKET_NAME))
        server.listen(1)
        assert sweep_stale(parent) == []
    finally:
        server.close()
    for path in (listening, extra, alive, older, target, link, not_a_socket):
        assert path.exists()
    assert (extra / "notes.txt").read_text() == "not ours to delete"
    assert (not_a_socket / SOCKET_NAME).read_text() == "a regular file"


def test_a_missing_parent_is_not_an_error(parent: Path) -> None:
    assert sweep_stale(parent / "absent") == []
