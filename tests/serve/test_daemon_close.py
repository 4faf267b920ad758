"""The daemon's ``close`` is idempotent and releases everything (sockets, runtime folder lock), also after a
start-up that was refused half-way."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from daemon.config import DaemonConfig, load_config, resolve
from daemon.errors import ConfigError
from daemon.ipc.client import Client
from daemon.notify import Notifier
from daemon.serve import Daemon, lock_runtime_dir


def settings_for(tmp_path: Path, control: str = "tcp://127.0.0.1:*") -> DaemonConfig:
    path = tmp_path / "acqd.yaml"
    path.write_text(
        f'control: {{endpoint: "{control}"}}\nevents: {{endpoint: "tcp://127.0.0.1:*"}}\n'
        "profiles_dir: profiles\ndata_root: data\n"
    )
    return load_config(path)


def test_close_twice_releases_sockets_and_the_runtime_lock(tmp_path: Path) -> None:
    settings = resolve(settings_for(tmp_path), {"RUNTIME_DIRECTORY": str(tmp_path / "rt")})
    daemon = Daemon(settings, Notifier({}))
    daemon.open()
    assert daemon.server is not None
    endpoint = daemon.server.endpoint
    with Client(endpoint, timeout_s=2, retries=0) as client:
        assert client.ping()["pong"] is True
    daemon.close()
    daemon.close()
    assert daemon.server is None
    assert daemon.publisher is None
    os.close(lock_runtime_dir(settings.runtime_dir))  # free again


def test_a_refused_start_leaves_nothing_open(tmp_path: Path) -> None:
    settings = resolve(settings_for(tmp_path, control="tcp://0.0.0.0:*"), {"RUNTIME_DIRECTORY": str(tmp_path / "rt")})
    daemon = Daemon(settings, Notifier({}))
    with pytest.raises(ConfigError, match="without CURVE"):
        daemon.open()
    assert daemon.publisher is None
    assert daemon.server is None
    os.close(lock_runtime_dir(settings.runtime_dir))
    daemon.close()
