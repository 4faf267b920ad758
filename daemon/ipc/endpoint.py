"""Frame-stream endpoints: validation, and the private ``ipc://`` folder of local workers.

Design notes:
- The acquisition side binds, workers connect. Local workers (child processes, the default) meet the sender on an
  ``ipc://`` socket inside a folder only this user can enter (mode 0700), so no other local user can inject frames
  or acknowledgements; remote workers use ``acqd worker --connect tcp://HOST:PORT``.
- A Unix socket path is limited to 107 bytes (``sun_path``); a longer one is refused here, not by a confusing
  ZeroMQ error later.
- ``tcp://HOST:0`` (or ``:*``) binds a free port; the sender reports the endpoint it actually bound.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from daemon.errors import ConfigError

SCHEMES = ("ipc", "tcp", "inproc")
MAX_IPC_PATH_BYTES = 107
SOCKET_NAME = "frames.sock"


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
    """A fresh folder (mode 0700) holding the ``ipc://`` socket of a local worker; ``close()`` removes it."""

    def __init__(self, parent: str | os.PathLike[str] | None = None, prefix: str = "acqd-") -> None:
        self._path = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))  # mkdtemp creates it with mode 0700
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
