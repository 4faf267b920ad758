"""CURVE: a server with CURVE accepts allowed client keys and silently refuses unknown keys and plain clients;
reload picks up new keys; the events socket follows the same rules."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from daemon.errors import ConfigError
from daemon.ipc.client import Client, ControlTimeout
from daemon.ipc.control_server import ControlServer
from daemon.ipc.curve import CurveClientSettings, CurveServerSettings, ensure_private_dir, generate_keypair
from daemon.ipc.events import EventPublisher, Events, Topic
from tests.control.run_manager_double import InMemoryRunManager


@dataclass(frozen=True)
class Keys:
    server: CurveServerSettings
    alice: CurveClientSettings
    mallory: CurveClientSettings
    mallory_public: Path


@pytest.fixture
def keys(tmp_path: Path) -> Keys:
    server = CurveServerSettings(keys_dir=tmp_path / "server", clients_dir=ensure_private_dir(tmp_path / "allowed"))
    alice_public, alice_secret = generate_keypair(tmp_path / "alice", "alice")
    mallory_public, mallory_secret = generate_keypair(tmp_path / "mallory", "mallory")
    shutil.copy(alice_public, server.clients_dir / "alice.key")
    server_public = server.keys_dir / "server.key"
    return Keys(
        server=server,
        alice=CurveClientSettings(server_public_key=server_public, client_secret_key=alice_secret),
        mallory=CurveClientSettings(server_public_key=server_public, client_secret_key=mallory_secret),
        mallory_public=mallory_public,
    )


@pytest.fixture
def secure_server(manager: InMemoryRunManager, keys: Keys) -> Iterator[ControlServer]:
    with ControlServer("tcp://127.0.0.1:*", manager, curve=keys.server) as srv:
        yield srv


def test_known_client_key_is_served(secure_server: ControlServer, keys: Keys) -> None:
    assert (keys.server.keys_dir / "server.key_secret").exists()  # generated on first start
    with Client(secure_server.endpoint, timeout_s=2, retries=0, curve=keys.alice) as alice:
        assert alice.ping()["pong"] is True
        assert alice.status()["daemon"]["curve"] is True


def test_unknown_client_key_gets_no_reply(
    secure_server: ControlServer, keys: Keys, manager: InMemoryRunManager
) -> None:
    mallory = Client(secure_server.endpoint, timeout_s=0.5, retries=0, curve=keys.mallory)
    with mallory, pytest.raises(ControlTimeout):
        mallory.start("demo")
    assert manager.calls["start"] == 0
    assert secure_server.stats().received == 0


def test_plain_client_gets_no_reply(secure_server: ControlServer, manager: InMemoryRunManager) -> None:
    plain = Client(secure_server.endpoint, timeout_s=0.5, retries=0)
    with plain, pytest.raises(ControlTimeout):
        plain.start("demo")
    assert manager.calls["start"] == 0
    assert secure_server.stats().received == 0


def test_reload_admits_a_newly_allowed_key(secure_server: ControlServer, keys: Keys) -> None:
    shutil.copy(keys.mallory_public, keys.server.clients_dir / "mallory.key")
    with Client(secure_server.endpoint, timeout_s=2, retries=0, curve=keys.alice) as alice:
        assert alice.reload()["control"] == {"curve": True, "allowed_client_keys": 2}
    with Client(secure_server.endpoint, timeout_s=2, retries=0, curve=keys.mallory) as mallory:
        assert mallory.ping()["pong"] is True


def test_curve_allows_binding_every_interface(manager: InMemoryRunManager, keys: Keys) -> None:
    with ControlServer("tcp://0.0.0.0:*", manager, curve=keys.server) as srv:
        port = srv.endpoint.rsplit(":", 1)[1]
        with Client(f"tcp://127.0.0.1:{port}", timeout_s=2, retries=0, curve=keys.alice) as alice:
            assert alice.ping()["pong"] is True


def test_events_with_curve(keys: Keys) -> None:
    with EventPublisher("tcp://0.0.0.0:*", curve=keys.server) as pub:
        endpoint = "tcp://127.0.0.1:" + pub.endpoint.rsplit(":", 1)[1]
        with (
            Events(endpoint, [Topic.STATE], timeout_s=0.05, curve=keys.alice) as alice,
            Events(endpoint, [Topic.STATE], timeout_s=0.05, curve=keys.mallory) as mallory,
            Events(endpoint, [Topic.STATE], timeout_s=0.05) as plain,
        ):
            for _ in range(100):
                pub.publish(Topic.STATE, {"n": 1})
                if alice.recv() is not None:
                    break
            else:
                raise AssertionError("the allowed subscriber never received an event")
            for _ in range(10):
                pub.publish(Topic.STATE, {"n": 2})
            assert alice.recv(timeout_s=1) is not None
            assert mallory.recv(timeout_s=0.2) is None
            assert plain.recv(timeout_s=0.2) is None


def test_missing_allowed_keys_folder_fails_start_cleanly(manager: InMemoryRunManager, tmp_path: Path) -> None:
    threads_before = threading.active_count()
    settings = CurveServerSettings(keys_dir=tmp_path / "server", clients_dir=tmp_path / "nobody")
    server = ControlServer("tcp://0.0.0.0:*", manager, curve=settings)
    with pytest.raises(ConfigError, match="does not exist"):
        server.start()
    server.close()
    assert threading.active_count() == threads_before
