"""The bind policy: ipc:// only inside a private runtime folder, tcp:// only on loopback, unless CURVE is on."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from daemon.errors import ConfigError
from daemon.ipc.client import Client
from daemon.ipc.control_server import ControlServer
from daemon.ipc.curve import prepare_bind
from daemon.ipc.events import EventPublisher
from tests.control.run_manager_double import InMemoryRunManager

PUBLIC = [
    "tcp://0.0.0.0:5555",
    "tcp://*:5555",
    "tcp://eth0:5555",
    "tcp://192.168.1.10:5555",
    "tcp://[::]:5555",
    "tcp://example.org:5555",
    "ipc://@acqd-abstract",
]


@pytest.mark.parametrize("endpoint", PUBLIC)
def test_non_local_bind_without_curve_is_refused(endpoint: str, manager: InMemoryRunManager) -> None:
    server = ControlServer(endpoint, manager)
    with pytest.raises(ConfigError) as caught:
        server.start()
    assert endpoint in str(caught.value)
    assert "CURVE" in str(caught.value)
    server.close()
    with pytest.raises(ConfigError, match="without CURVE"):
        EventPublisher(endpoint)


@pytest.mark.parametrize(
    "endpoint", ["tcp://127.0.0.1:*", "tcp://127.0.0.5:7000", "tcp://localhost:1", "tcp://[::1]:5555", "inproc://acqd"]
)
def test_local_endpoints_need_no_curve(endpoint: str) -> None:
    prepare_bind(endpoint, secure=False)


@pytest.mark.parametrize("endpoint", ["pgm://eth0;239.192.1.1:5555", "ws://127.0.0.1:80", "nonsense"])
def test_unsupported_transports_are_refused(endpoint: str) -> None:
    with pytest.raises(ConfigError, match="not supported"):
        prepare_bind(endpoint, secure=True)


def test_ipc_runtime_folder_is_created_private(tmp_path: Path, manager: InMemoryRunManager) -> None:
    old = os.umask(0o022)
    try:
        endpoint = f"ipc://{tmp_path}/run/control.sock"
        with ControlServer(endpoint, manager) as srv, Client(srv.endpoint, timeout_s=2, retries=0) as c:
            assert c.ping()["pong"] is True
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(tmp_path / "run").st_mode) == 0o700


def test_ipc_folder_is_fixed_up_when_umask_is_too_tight(tmp_path: Path) -> None:
    old = os.umask(0o277)
    try:
        prepare_bind(f"ipc://{tmp_path}/run/control.sock", secure=False)
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(tmp_path / "run").st_mode) == 0o700


@pytest.mark.parametrize("mode", [0o755, 0o750, 0o701, 0o777])
def test_existing_ipc_folder_with_wider_permissions_is_refused(tmp_path: Path, mode: int) -> None:
    folder = tmp_path / "run"
    folder.mkdir()
    folder.chmod(mode)
    with pytest.raises(ConfigError) as caught:
        prepare_bind(f"ipc://{folder}/control.sock", secure=False)
    assert f"has mode {mode:04o}; it must be 0700" in str(caught.value)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to give the folder to another user")
def test_existing_ipc_folder_of_another_owner_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "run"
    folder.mkdir(mode=0o700)
    os.chown(folder, 65534, 65534)
    with pytest.raises(ConfigError, match="owned by uid 65534"):
        prepare_bind(f"ipc://{folder}/control.sock", secure=False)


def test_symlinked_ipc_folder_is_refused(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir(mode=0o700)
    (tmp_path / "run").symlink_to(real)
    with pytest.raises(ConfigError, match="is a symlink"):
        prepare_bind(f"ipc://{tmp_path}/run/control.sock", secure=False)


def test_relative_or_orphan_ipc_paths_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="absolute path"):
        prepare_bind("ipc://run/control.sock", secure=False)
    with pytest.raises(ConfigError, match="parent does not exist"):
        prepare_bind(f"ipc://{tmp_path}/missing/run/control.sock", secure=False)
