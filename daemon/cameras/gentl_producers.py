"""Finding GenTL producers (.cti files): from the settings, else from ``GENICAM_GENTL64_PATH``.

A path may name a .cti file or a folder holding them (as in ``GENICAM_GENTL64_PATH``, whose entries are folders
separated by ``os.pathsep``). Paths given in the settings must exist; stale entries of the environment variable are
skipped, as other GenTL consumers do. Each producer is listed once, in the order found.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from daemon.errors import ConfigError

ENV_VAR = "GENICAM_GENTL64_PATH"


def _ctis_in(path: Path) -> list[Path]:
    if path.is_dir():
        return sorted(p for p in path.iterdir() if p.suffix.lower() == ".cti" and p.is_file())
    if path.is_file() and path.suffix.lower() == ".cti":
        return [path]
    return []


def find_producers(paths: Sequence[str], environ: Mapping[str, str] | None = None) -> list[Path]:
    """The .cti files named by ``paths``, or by ``GENICAM_GENTL64_PATH`` when ``paths`` is empty."""
    env = os.environ if environ is None else environ
    explicit = bool(paths)
    entries = list(paths) if explicit else [e for e in env.get(ENV_VAR, "").split(os.pathsep) if e]
    found: list[Path] = []
    for entry in entries:
        path = Path(entry).expanduser()
        ctis = _ctis_in(path)
        if explicit and not ctis:
            raise ConfigError(f"producers entry {entry!r} is neither a .cti file nor a folder holding one.")
        found.extend(p.resolve() for p in ctis if p.resolve() not in found)
    if not found:
        where = f"producers {list(paths)!r}" if explicit else f"{ENV_VAR}={env.get(ENV_VAR, '')!r}"
        raise ConfigError(
            f"no GenTL producer (.cti) found in {where}. Set producers in the camera settings or {ENV_VAR}."
        )
    return found
