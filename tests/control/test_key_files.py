"""CURVE key files: secret files 0600 and key folders 0700 whatever the umask; unsafe existing files refused."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
import zmq.auth

from daemon.errors import ConfigError
from daemon.ipc.curve import (
    CurveClientSettings,
    ensure_server_keys,
    generate_keypair,
    load_allowed_keys,
    load_public_key,
    load_secret_key,
)


def mode_of(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


@pytest.fixture(params=[0o000, 0o022, 0o277], ids=["umask000", "umask022", "umask277"])
def umask(request: pytest.FixtureRequest) -> Iterator[int]:
    old = os.umask(request.param)
    yield request.param
    os.umask(old)


def test_generated_keypair_permissions(tmp_path: Path, umask: int) -> None:
    public, secret = generate_keypair(tmp_path / "keys", "alice")
    assert (mode_of(tmp_path / "keys"), mode_of(secret), mode_of(public)) == (0o700, 0o600, 0o644)
    pub_key, sec_key = zmq.auth.load_certificate(secret)  # pyzmq reads our format
    assert sec_key is not None
    assert zmq.auth.load_certificate(public) == (pub_key, None)
    assert zmq.curve_public(sec_key) == pub_key


def test_server_keys_are_generated_once(tmp_path: Path) -> None:
    first = ensure_server_keys(tmp_path / "server")
    second = ensure_server_keys(tmp_path / "server")
    assert first == second
    assert mode_of(tmp_path / "server" / "server.key_secret") == 0o600


def test_existing_keys_are_never_overwritten(tmp_path: Path) -> None:
    generate_keypair(tmp_path / "keys", "alice")
    with pytest.raises(ConfigError, match="refusing to overwrite"):
        generate_keypair(tmp_path / "keys", "alice")


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644])
def test_secret_readable_by_others_is_refused(tmp_path: Path, mode: int) -> None:
    ensure_server_keys(tmp_path / "server")
    secret = tmp_path / "server" / "server.key_secret"
    secret.chmod(mode)
    with pytest.raises(ConfigError, match=f"has mode {mode:04o}; it must be 0600"):
        ensure_server_keys(tmp_path / "server")


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to give the file to another user")
def test_secret_of_another_owner_is_refused(tmp_path: Path) -> None:
    _, secret = generate_keypair(tmp_path / "keys", "alice")
    os.chown(secret, 65534, 65534)
    with pytest.raises(ConfigError, match="owned by uid 65534"):
        load_secret_key(secret)


def test_key_folder_with_wider_permissions_is_refused(tmp_path: Path) -> None:
    (tmp_path / "server").mkdir(mode=0o755)
    os.chmod(tmp_path / "server", 0o755)
    with pytest.raises(ConfigError, match="must be 0700"):
        ensure_server_keys(tmp_path / "server")


def test_public_key_without_its_secret_is_refused(tmp_path: Path) -> None:
    generate_keypair(tmp_path / "server", "server")
    (tmp_path / "server" / "server.key_secret").unlink()
    with pytest.raises(ConfigError, match="exists without its secret"):
        ensure_server_keys(tmp_path / "server")


def test_bad_key_files_are_config_errors(tmp_path: Path) -> None:
    junk = tmp_path / "junk.key"
    junk.write_text('public-key = "too short"\n')
    with pytest.raises(ConfigError, match=r"junk\.key"):
        load_public_key(junk)
    with pytest.raises(ConfigError, match="does not exist"):
        load_secret_key(tmp_path / "missing.key_secret")
    public, _ = generate_keypair(tmp_path / "keys", "alice")
    with pytest.raises(ConfigError, match="does not exist"):
        CurveClientSettings(server_public_key=public, client_secret_key=tmp_path / "nope").load()


def test_allowed_keys_folder_writable_by_others_is_refused(tmp_path: Path) -> None:
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    allowed.chmod(0o775)
    with pytest.raises(ConfigError, match="not writable by group or others"):
        load_allowed_keys(allowed)
    allowed.chmod(0o755)
    public, _ = generate_keypair(tmp_path / "keys", "alice")
    os.link(public, allowed / "alice.key")
    assert load_allowed_keys(allowed) == {load_public_key(public)}
