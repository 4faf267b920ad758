"""Who may reach the daemon's sockets: the bind policy, private runtime folders, CURVE key files, the authenticator.

Policy (:func:`prepare_bind`): without CURVE a socket binds only where the operating system already limits who can
connect: ``ipc://`` inside a runtime folder that only the service user can enter (created 0700; an existing folder
with wider permissions, another owner or a symlink is refused), ``tcp://`` on a loopback address, or ``inproc://``.
Any other address (another interface, ``*``, an abstract ``ipc://@name``) needs CURVE, else :class:`ConfigError`.

Design notes:
- Key files are ZeroMQ certificates (the format ``zmq.auth.load_certificate`` reads). Secret files are created
  with ``os.open(..., O_CREAT | O_EXCL, 0o600)`` and ``fchmod`` so they are never readable by others, whatever the
  umask, not even for an instant; key folders are 0700. An existing secret file readable by group or others, or
  owned by another user, is refused rather than silently fixed.
- :class:`ClientKeyAuthenticator` runs pyzmq's ``ThreadAuthenticator`` on the component's own context with a
  credentials callback over a set of allowed client public keys read from a folder; :meth:`reload` swaps the set
  atomically so keys can be added or removed without a restart.
- Each server component owns its zmq context, hence its own authenticator: no ZAP endpoint clashes.
"""

from __future__ import annotations

import ipaddress
import os
import stat
import struct
import threading
from dataclasses import dataclass
from pathlib import Path

import zmq
import zmq.auth
from zmq.auth.thread import ThreadAuthenticator
from zmq.utils import z85

from daemon.errors import ConfigError
from daemon.log import get_logger

log = get_logger("curve")

SERVER_KEY_NAME = "server"
_Z85_KEY_CHARS = 40


@dataclass(frozen=True, slots=True)
class CurveKeyPair:
    """A CURVE key pair in Z85 text (40 characters each)."""

    public: bytes
    secret: bytes


@dataclass(frozen=True, slots=True)
class CurveServerSettings:
    """Where the server keeps its key pair (generated on first start) and the allowed client public keys."""

    keys_dir: Path
    clients_dir: Path


@dataclass(frozen=True, slots=True)
class CurveClientSettings:
    """What a client needs: the server's public key file and its own secret key file (which holds both keys)."""

    server_public_key: Path
    client_secret_key: Path

    def load(self) -> tuple[bytes, CurveKeyPair]:
        server_public = load_public_key(self.server_public_key)
        return server_public, load_secret_key(self.client_secret_key)


def prepare_bind(endpoint: str, secure: bool) -> None:
    """Refuse an endpoint the policy forbids; create/check the private folder of an ``ipc://`` endpoint."""
    transport, _, address = endpoint.partition("://")
    if transport == "inproc":
        return
    if transport == "ipc":
        if address.startswith("@"):
            _require_curve(endpoint, secure, "an abstract ipc socket can be reached by any local user")
            return
        path = Path(address)
        if not path.is_absolute():
            raise ConfigError(f"ipc endpoint {endpoint!r} must use an absolute path inside a private runtime folder.")
        ensure_private_dir(path.parent)
        return
    if transport == "tcp":
        if not _is_loopback(address):
            _require_curve(endpoint, secure, "it is not a loopback address")
        return
    raise ConfigError(
        f"endpoint {endpoint!r}: transport {transport!r} is not supported; use ipc://, tcp:// or inproc://."
    )


def _require_curve(endpoint: str, secure: bool, reason: str) -> None:
    if not secure:
        raise ConfigError(
            f"refusing to bind {endpoint!r} without CURVE: {reason}. Bind ipc:// inside a private runtime folder "
            f"or tcp://127.0.0.1, or enable CURVE (a server key folder and a folder of allowed client public keys)."
        )


def _is_loopback(address: str) -> bool:
    host = address.rsplit(":", 1)[0] if ":" in address else address
    host = host.split(";")[-1]  # "tcp://source;dest" form: the bind address is the last one
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # an interface name, '*' or a host name: not provably local


def ensure_private_dir(path: Path) -> Path:
    """Create ``path`` (its parent must exist) with mode 0700, or check an existing one is ours and private."""
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass
    except FileNotFoundError as exc:
        raise ConfigError(f"cannot create private folder {str(path)!r}: its parent does not exist.") from exc
    else:
        os.chmod(path, 0o700)  # the umask may have removed bits we need; it can never have added any
        return path
    check_private(path, want_dir=True)
    return path


def check_private(path: Path, *, want_dir: bool) -> None:
    """Refuse a path that is a symlink, of the wrong kind, owned by another user, or open to group/others."""
    info = os.lstat(path)
    kind = "folder" if want_dir else "file"
    if stat.S_ISLNK(info.st_mode):
        raise ConfigError(f"{str(path)!r} is a symlink; a private {kind} must be a real {kind}.")
    if want_dir != stat.S_ISDIR(info.st_mode) or (not want_dir and not stat.S_ISREG(info.st_mode)):
        raise ConfigError(f"{str(path)!r} is not a {kind}.")
    if info.st_uid != os.geteuid():
        raise ConfigError(
            f"{kind} {str(path)!r} is owned by uid {info.st_uid}, not by the service user (uid {os.geteuid()})."
        )
    mode = stat.S_IMODE(info.st_mode)
    if mode & 0o077:
        wanted = "0700" if want_dir else "0600"
        raise ConfigError(f"{kind} {str(path)!r} has mode {mode:04o}; it must be {wanted} (the service user only).")


def generate_keypair(directory: Path, name: str) -> tuple[Path, Path]:
    """Write ``NAME.key`` (public, 0644) and ``NAME.key_secret`` (0600) in a private folder; both must not exist."""
    ensure_private_dir(directory)
    public, secret = zmq.curve_keypair()
    secret_path = directory / f"{name}.key_secret"
    public_path = directory / f"{name}.key"
    _write_certificate(secret_path, public, secret, 0o600)
    _write_certificate(public_path, public, None, 0o644)
    log.info("curve_keypair_created", name=name, public_key=public.decode())
    return public_path, secret_path


def ensure_server_keys(keys_dir: Path) -> CurveKeyPair:
    """Load the server key pair, generating it on first start; permissions are checked either way."""
    secret_path = keys_dir / f"{SERVER_KEY_NAME}.key_secret"
    ensure_private_dir(keys_dir)
    if not os.path.lexists(secret_path):
        public_path = keys_dir / f"{SERVER_KEY_NAME}.key"
        if os.path.lexists(public_path):
            raise ConfigError(f"{str(public_path)!r} exists without its secret file {str(secret_path)!r}.")
        generate_keypair(keys_dir, SERVER_KEY_NAME)
    return load_secret_key(secret_path)


def load_secret_key(path: Path) -> CurveKeyPair:
    """Read a secret certificate that only its owner can read."""
    if not os.path.lexists(path):
        raise ConfigError(f"CURVE secret key file {str(path)!r} does not exist.")
    check_private(path, want_dir=False)
    try:
        public, secret = zmq.auth.load_certificate(path)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read CURVE secret key file {str(path)!r}: {exc}") from exc
    if secret is None:
        raise ConfigError(f"{str(path)!r} holds no secret-key; give the .key_secret file.")
    return CurveKeyPair(public=_check_z85(public, path), secret=_check_z85(secret, path))


def load_public_key(path: Path) -> bytes:
    try:
        public, _ = zmq.auth.load_certificate(path)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read CURVE public key file {str(path)!r}: {exc}") from exc
    return _check_z85(public, path)


def load_allowed_keys(clients_dir: Path) -> frozenset[bytes]:
    """The public keys of every ``*.key`` file in a folder that is ours and not writable by others."""
    info = os.stat(clients_dir) if clients_dir.is_dir() else None
    if info is None:
        raise ConfigError(f"allowed client keys folder {str(clients_dir)!r} does not exist.")
    if info.st_uid != os.geteuid() or stat.S_IMODE(info.st_mode) & 0o022:
        raise ConfigError(
            f"allowed client keys folder {str(clients_dir)!r} must be owned by the service user and not writable "
            f"by group or others (mode {stat.S_IMODE(info.st_mode):04o}, uid {info.st_uid})."
        )
    return frozenset(load_public_key(path) for path in sorted(clients_dir.glob("*.key")))


class ClientKeyAuthenticator:
    """ZAP authentication for one zmq context: CURVE clients whose public key is in the allowed folder."""

    def __init__(self, context: zmq.Context[zmq.Socket[bytes]], clients_dir: Path) -> None:
        self._clients_dir = clients_dir
        self._keys = load_allowed_keys(clients_dir)
        self._auth: ThreadAuthenticator | None = ThreadAuthenticator(context)
        self._lock = threading.Lock()
        self._auth.start()
        self._auth.configure_curve_callback(domain="*", credentials_provider=self)
        log.info("curve_clients_loaded", folder=str(clients_dir), keys=len(self._keys))

    def callback(self, domain: str, key: bytes) -> bool:
        """Called by the ZAP thread for each CURVE handshake."""
        allowed = key in self._keys
        if not allowed:
            log.warning("curve_client_denied", domain=domain, public_key=key.decode(errors="replace"))
        return allowed

    def reload(self) -> int:
        """Re-read the allowed keys folder; returns how many keys are allowed now."""
        keys = load_allowed_keys(self._clients_dir)
        self._keys = keys
        log.info("curve_clients_loaded", folder=str(self._clients_dir), keys=len(keys))
        return len(keys)

    def close(self) -> None:
        with self._lock:
            auth, self._auth = self._auth, None
        if auth is not None:
            auth.stop()


def apply_server_keys(socket: zmq.Socket[bytes], keys: CurveKeyPair) -> None:
    socket.curve_secretkey = keys.secret
    socket.curve_publickey = keys.public
    socket.curve_server = True


def apply_client_keys(socket: zmq.Socket[bytes], settings: CurveClientSettings) -> None:
    server_public, own = settings.load()
    socket.curve_serverkey = server_public
    socket.curve_publickey = own.public
    socket.curve_secretkey = own.secret


def _write_certificate(path: Path, public: bytes, secret: bytes | None, mode: int) -> None:
    lines = [
        "#   ZeroMQ CURVE certificate written by acqd",
        "metadata",
        "curve",
        f'    public-key = "{public.decode()}"',
    ]
    if secret is not None:
        lines.append(f'    secret-key = "{secret.decode()}"')
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        fd = os.open(path, flags, mode)
    except FileExistsError as exc:
        raise ConfigError(f"refusing to overwrite key file {str(path)!r}.") from exc
    try:
        os.fchmod(fd, mode)
        os.write(fd, ("\n".join(lines) + "\n").encode())
        os.fsync(fd)
    finally:
        os.close(fd)


def _check_z85(key: bytes | None, path: Path) -> bytes:
    if key is None or len(key) != _Z85_KEY_CHARS:
        raise ConfigError(f"{str(path)!r} does not hold a {_Z85_KEY_CHARS}-character Z85 CURVE key.")
    try:
        z85.decode(key)
    except (KeyError, ValueError, struct.error) as exc:
        raise ConfigError(f"{str(path)!r} does not hold a valid Z85 CURVE key.") from exc
    return key
