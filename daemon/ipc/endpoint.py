"""Frame-stream endpoints: validation, and the private ``ipc://`` folder of local workers.

Design notes:
- The acquisition side binds, workers connect. Local workers (child processes, the default) meet the sender on an
  ``ipc://`` socket inside a folder only this user can enter (mode 0700), so no other local user can inject frames
  or acknowledgements; remote workers use ``acqd worker --connect tcp://HOST:PORT``.
- A Unix socket path is limited to 107 bytes (``sun_path``); a longer one is refused here, not by a confusing
  ZeroMQ error later.
- ``tcp://HOST:0`` (or ``:*``) binds a free port; the sender reports the endpoint it actually bound.
- A run killed outright (SIGKILL, power cut of the process) cannot remove its folder. Folders are named
  ``acqd-ipc-<pid>-<random>``, and each new one first sweeps its siblings that are stale (:func:`sweep_stale`): ours
  and private (:func:`~daemon.ipc.curve.check_private`: a real folder, not a link, of our uid, mode 0700), holding
  nothing but the socket file, of a process that no longer exists, and with nobody listening on the socket (a
  connect is refused). The last check keeps a live run's folder even when its pid means nothing here (another pid
  namespace sharing ``/tmp``). Folders of the older naming (``acqd-<random>``) carry no pid and are left alone.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import stat
import tempfile
from pathlib import Path

from daemon.errors import ConfigError
from daemon.ipc.curve import check_private
from daemon.log import get_logger

SCHEMES = ("ipc", "tcp", "inproc")
MAX_IPC_PATH_BYTES = 107
SOCKET_NAME = "frames.sock"
IPC_PREFIX = "acqd-ipc-"
_FOLDER_NAME = re.compile(re.escape(IPC_PREFIX) + r"(\d{1,10})-[A-Za-z0-9_]+")

_log = get_logger("daemon.ipc.endpoint")


def parse_endpoint(endpoint: str) -> str:
    """Validate a ZeroMQ endpoint of a scheme in :data:`SCHEMES`; return it unchanged."""
    if not isinstance(endpoint, str) or "://" not in endpoint:
        raise ConfigError(f"endpoint must look like 'ipc://PATH' or 'tcp://HOST:PORT'. Got {endpoint!r} instead.")
    scheme, _, rest = endpoint.partition("://")
    if scheme not in SCHEMES:
        raise ConfigError(f"endpoint scheme must be one of {SCHEMES}. Got {scheme!r} in {endpoint!r} instead.")
    if not rest:
        raise ConfigError(f"endpoint {endpoint!r} has no address after '{scheme}://'.")
    if scheme == "tcp":
        host, sep, port = rest.rpartition(":")
        if not sep or not host or not (port == "*" or (port.isdigit() and int(port) <= 65535)):
            raise ConfigError(f"tcp endpoint must be 'tcp://HOST:PORT' with PORT 0-65535 or '*'. Got {endpoint!r}.")
    if scheme == "ipc" and len(os.fsencode(rest)) > MAX_IPC_PATH_BYTES:
        raise ConfigError(
            f"ipc endpoint path must be at most {MAX_IPC_PATH_BYTES} bytes. Got {len(os.fsencode(rest))} in {rest!r}."
        )
    return endpoint


class PrivateIpcFolder:
    """A fresh folder (mode 0700) holding the ``ipc://`` socket of a local worker; ``close()`` removes it. Stale
    folders of killed runs beside it are swept first (see the design notes)."""

    def __init__(self, parent: str | os.PathLike[str] | None = None) -> None:
        where = Path(parent if parent is not None else tempfile.gettempdir())
        swept = sweep_stale(where)
        if swept:
            _log.info("ipc_folders_swept", folder=str(where), count=len(swept), names=[p.name for p in swept])
        prefix = f"{IPC_PREFIX}{os.getpid()}-"
        self._path = Path(tempfile.mkdtemp(prefix=prefix, dir=where))  # mkdtemp creates it with mode 0700
        self._closed = False
        self.endpoint = parse_endpoint(f"ipc://{self._path / SOCKET_NAME}")

    @property
    def path(self) -> Path:
        return self._path

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        """Remove the folder and the socket file in it. Idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._path.exists():  # someone may have cleaned the temporary folder already
            shutil.rmtree(self._path)


def sweep_stale(parent: Path) -> list[Path]:
    """Remove the private ipc folders in ``parent`` left by runs that no longer exist; return what was removed.
    Never raises: a folder that cannot be judged or removed is left as it is."""
    swept: list[Path] = []
    try:
        names = os.listdir(parent)
    except OSError:
        return swept
    for name in names:
        match = _FOLDER_NAME.fullmatch(name)
        if match is None or _process_exists(int(match.group(1))):
            continue
        path = parent / name
        if _stale(path):
            with contextlib.suppress(OSError):  # another run swept it first, or it changed under us
                (path / SOCKET_NAME).unlink(missing_ok=True)
                path.rmdir()
                swept.append(path)
    return swept


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True  # another user's process, or a number we cannot judge: keep the folder
    return True


def _stale(path: Path) -> bool:
    """Ours and private (a real folder of our uid, mode 0700), holding at most a socket file nobody listens on."""
    try:
        check_private(path, want_dir=True)
        entries = os.listdir(path)
    except (ConfigError, OSError):
        return False
    if not set(entries) <= {SOCKET_NAME}:
        return False
    return not entries or not _listening(path / SOCKET_NAME)


def _listening(socket_path: Path) -> bool:
    """Whether a process accepts connections on the Unix socket (anything but a refusal counts as yes)."""
    try:
        if not stat.S_ISSOCK(os.lstat(socket_path).st_mode):
            return True
    except FileNotFoundError:
        return False
    except OSError:
        return True
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.settimeout(1.0)
        probe.connect(os.fspath(socket_path))
    except (ConnectionRefusedError, FileNotFoundError):
        return False
    except OSError:
        return True
    finally:
        probe.close()
    return True
