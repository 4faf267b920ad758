"""The storage worker's command-line options, and its test-only environment (``ACQD_WORKER_APPEND_DELAY_S``)."""

from __future__ import annotations

import argparse
from collections.abc import Mapping

from daemon.errors import ConfigError

APPEND_DELAY_ENV = "ACQD_WORKER_APPEND_DELAY_S"
RING_ENV = "ACQD_FRAME_RING_MIB"


def append_delay_s(environ: Mapping[str, str]) -> float:
    """``ACQD_WORKER_APPEND_DELAY_S`` (test only): seconds to sleep before each append; 0 when unset."""
    text = environ.get(APPEND_DELAY_ENV, "")
    if not text:
        return 0.0
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value <= 60:
        raise ConfigError(f"{APPEND_DELAY_ENV} must be a number of seconds between 0 and 60. Got {text!r} instead.")
    return value


def ring_mib_of(option: int | None, environ: Mapping[str, str]) -> int:
    """The frame ring's size in MiB: ``--ring-mib``, else ``ACQD_FRAME_RING_MIB``, else 32 (0 = no ring)."""
    text = str(option) if option is not None else environ.get(RING_ENV, "32")
    value = int(text) if text.isdigit() else -1
    if not 0 <= value <= 65536:
        raise ConfigError(f"--ring-mib / {RING_ENV} must be an integer MiB from 0 to 65536. Got {text!r} instead.")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The worker's options (shared by ``python -m daemon.storage.worker`` and ``acqd worker``)."""
    parser.add_argument(
        "--connect", required=True, metavar="ENDPOINT", help="the sender's endpoint (ipc://PATH or tcp://HOST:PORT)"
    )
    parser.add_argument("--worker-id", default=None, help="how this worker introduces itself (default: worker-PID)")
    parser.add_argument(
        "--ring-mib",
        type=int,
        default=None,
        help=f"shared-memory frame ring offered to a sender on this host, MiB; 0 = none (default: ${RING_ENV} or 32)",
    )
    parser.add_argument("--log-format", choices=["json", "console", "auto"], default="auto", help="log line format")
    parser.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING or ERROR (default: INFO)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m daemon.storage.worker",
        description="Store the frames of a run's frame stream into its Zarr store (the run's storage worker).",
    )
    add_arguments(parser)
    return parser
