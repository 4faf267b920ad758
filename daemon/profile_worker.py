"""Where a run's storage worker connects: ``storage.worker_endpoint`` (and ``storage.allow_remote_worker``).

By default a run spawns its storage worker as a child process on a private ``ipc://`` socket. A profile may name
``worker_endpoint: tcp://HOST:PORT`` instead: the run then binds there and waits for an external worker started
with ``acqd worker --connect tcp://HOST:PORT``.

Design notes:
- The frame stream has no authentication: whoever connects first receives the frames and acknowledges them. So
  the host must be a loopback address (``127.0.0.0/8``, ``::1``, ``localhost``) unless the profile opts in with
  ``allow_remote_worker: true`` (for a trusted, private network).
- Port 0 (or ``*``) is refused: the external worker must know the port in advance.
"""

from __future__ import annotations

import ipaddress

from daemon.errors import ConfigError
from daemon.ipc.endpoint import parse_endpoint

LOOPBACK_NAMES = ("localhost",)


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback IP addresses (``[::1]`` brackets allowed)."""
    name = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if name in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def parse_worker_endpoint(endpoint: str, allow_remote: bool = False) -> str:
    """Validate ``worker_endpoint``: ``tcp://HOST:PORT`` with a fixed port, loopback unless ``allow_remote``."""
    if not isinstance(endpoint, str) or not endpoint.startswith("tcp://"):
        raise ConfigError(
            "worker_endpoint must be 'tcp://HOST:PORT' (an external worker connects there with "
            f"'acqd worker --connect'). Got {endpoint!r} instead."
        )
    parse_endpoint(endpoint)
    host, _, port = endpoint[len("tcp://") :].rpartition(":")
    if port in ("0", "*"):
        raise ConfigError(f"worker_endpoint needs a fixed port (the worker must know it). Got {endpoint!r} instead.")
    if not allow_remote and not is_loopback(host):
        raise ConfigError(
            f"worker_endpoint host must be a loopback address (127.0.0.1, ::1, localhost): the frame stream has no "
            f"authentication. Set allow_remote_worker: true to accept {host!r} on a trusted network. "
            f"Got {endpoint!r} instead."
        )
    return endpoint
