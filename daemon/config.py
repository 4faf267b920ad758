"""The daemon configuration (``acqd serve --config FILE``): sockets, folders, S3 defaults, logs, budgets, CURVE.

The file is strict YAML, read like a profile (:mod:`daemon.strict_yaml`, :mod:`daemon.profile_fields`): unknown
keys, duplicate keys, tags, anchors and ambiguous scalars are errors that name the file, the line and the field.
Every key is optional; ``acqd serve`` runs with no file at all. ``config/acqd.yaml`` documents every key.

:func:`load_config` reads a file into a :class:`DaemonConfig` (what was written); :func:`resolve` turns it into
:class:`DaemonSettings` (what the daemon uses): endpoints, folders and the runtime folder filled in from the
environment.

Design notes:
- Defaults: control ``ipc://<runtime>/control.sock``, events ``ipc://<runtime>/events.sock`` where runtime is
  ``$RUNTIME_DIRECTORY`` (systemd; the first entry when it lists several), else ``$XDG_RUNTIME_DIR/acqd``, else
  ``/tmp/acqd-<uid>``; the runtime folder is created 0700 (or checked) by :func:`ensure_runtime_dir`. Profiles:
  ``./config/profiles`` when that folder exists, else ``/etc/acqd/profiles``. Data root: ``$ACQD_DATA_ROOT``,
  else ``./data``.
- Relative paths in the file are relative to the file's own folder, so a configuration does not depend on the
  working directory the daemon was started from.
- Sizes (``memory_bytes``, ``max_queue_bytes``) are integers or strings with a unit (``"2 GiB"``), as in profiles.
- The bind policy (non-local endpoints need CURVE) is checked when the sockets bind
  (:func:`daemon.ipc.curve.prepare_bind`), so the daemon refuses to start with that message.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from daemon.errors import ConfigError
from daemon.ipc.curve import CurveServerSettings, ensure_private_dir
from daemon.log import LogFormat
from daemon.profile import parse_size
from daemon.profile_fields import Checker, MapReader, build, field_names
from daemon.profile_paths import default_data_root
from daemon.storage.s3_settings import S3Settings
from daemon.strict_yaml import DocumentError, MapNode, load_file

LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR"]
CONTROL_SOCKET = "control.sock"
EVENTS_SOCKET = "events.sock"
LOCAL_PROFILES_DIR = Path("config/profiles")
SYSTEM_PROFILES_DIR = Path("/etc/acqd/profiles")


def _parse_optional_size(name: str, value: int | str | None) -> int | None:
    if value is None:
        return None
    try:
        size = parse_size(value) if isinstance(value, str) else value
    except ConfigError as exc:
        raise ConfigError(f"{name} {exc}") from exc
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise ConfigError(f"{name} must be a size >= 1 byte. Got {value!r} instead.")
    return size


def _parse_endpoint(name: str, value: str | None) -> None:
    if value is not None and "://" not in value:
        raise ConfigError(f"{name} must be a ZeroMQ endpoint such as ipc:///run/acqd/x.sock. Got {value!r} instead.")


@dataclass(frozen=True, slots=True)
class ControlConfig:
    """The control socket: ``endpoint`` (default ``ipc://<runtime>/control.sock``) and the command queue bound."""

    endpoint: str | None = None
    max_queued: int = 32

    def __post_init__(self) -> None:
        _parse_endpoint("endpoint", self.endpoint)
        if not 1 <= self.max_queued <= 1024:
            raise ConfigError(f"max_queued must be between 1 and 1024. Got {self.max_queued} instead.")


@dataclass(frozen=True, slots=True)
class EventsConfig:
    """The events socket: ``endpoint`` (default ``ipc://<runtime>/events.sock``) and the preview limits."""

    endpoint: str | None = None
    preview_max_hz: float = 5.0
    preview_max_px: int = 256

    def __post_init__(self) -> None:
        _parse_endpoint("endpoint", self.endpoint)
        if not (math.isfinite(self.preview_max_hz) and 0 < self.preview_max_hz <= 100):
            raise ConfigError(f"preview_max_hz must be in (0, 100]. Got {self.preview_max_hz} instead.")
        if not 1 <= self.preview_max_px <= 4096:
            raise ConfigError(f"preview_max_px must be between 1 and 4096. Got {self.preview_max_px} instead.")


@dataclass(frozen=True, slots=True)
class CurveConfig:
    """CURVE on both sockets: the server key folder (key pair made on first start) and the allowed client keys."""

    keys_dir: str
    clients_dir: str

    def __post_init__(self) -> None:
        for name in ("keys_dir", "clients_dir"):
            if not getattr(self, name).strip():
                raise ConfigError(f"{name} must be a folder path. Got '' instead.")


@dataclass(frozen=True, slots=True)
class S3Defaults:
    """Used by runs whose profile stores to ``s3://`` without naming ``storage.s3.endpoint`` / ``region``."""

    endpoint: str | None = None
    region: str | None = None

    def __post_init__(self) -> None:
        S3Settings(endpoint=self.endpoint, region=self.region)  # same rules as a profile's s3 section

    def apply(self, settings: S3Settings) -> S3Settings:
        """``settings`` with the fields it leaves out taken from these defaults."""
        endpoint = settings.endpoint if settings.endpoint is not None else self.endpoint
        region = settings.region if settings.region is not None else self.region
        if (endpoint, region) == (settings.endpoint, settings.region):
            return settings
        return dataclasses.replace(settings, endpoint=endpoint, region=region)


@dataclass(frozen=True, slots=True)
class LogConfig:
    """``format``: ``json`` (journald), ``console`` or ``auto`` (console on a terminal); ``level``."""

    format: LogFormat = "auto"
    level: LogLevel = "INFO"

    def __post_init__(self) -> None:
        if self.format not in ("json", "console", "auto"):
            raise ConfigError(f"format must be one of json, console, auto. Got {self.format!r} instead.")
        if self.level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
            raise ConfigError(f"level must be one of DEBUG, INFO, WARNING, ERROR. Got {self.level!r} instead.")


@dataclass(frozen=True, slots=True)
class RunsConfig:
    """Budgets and bookkeeping of runs.

    - ``max_runs``: live runs at once; ``history``: finished runs kept for ``status``.
    - ``max_queue_bytes``: the largest ``acquisition.queue_bytes`` a profile may ask for (None: no limit).
    - ``memory_bytes``: writer buffers + queues + camera frames of all live runs together (None: no limit); a
      start that would exceed it is answered ``unavailable``.
    - ``metrics_interval_s``: how often runs publish metrics (None: each profile's
      ``acquisition.metrics_interval_s``); ``stop_timeout_s``: how long a shutdown waits for runs to finish
      gracefully before aborting them (keep it below the unit's ``TimeoutStopSec``).
    """

    max_runs: int = 8
    history: int = 32
    max_queue_bytes: int | str | None = None
    memory_bytes: int | str | None = None
    metrics_interval_s: float | None = None
    stop_timeout_s: float = 45.0

    def __post_init__(self) -> None:
        if not 1 <= self.max_runs <= 64:
            raise ConfigError(f"max_runs must be between 1 and 64. Got {self.max_runs} instead.")
        if not 0 <= self.history <= 10_000:
            raise ConfigError(f"history must be between 0 and 10000. Got {self.history} instead.")
        object.__setattr__(self, "max_queue_bytes", _parse_optional_size("max_queue_bytes", self.max_queue_bytes))
        object.__setattr__(self, "memory_bytes", _parse_optional_size("memory_bytes", self.memory_bytes))
        interval = self.metrics_interval_s
        if interval is not None and not (math.isfinite(interval) and 0.1 <= interval <= 3600):
            raise ConfigError(f"metrics_interval_s must be in [0.1, 3600] or null. Got {interval} instead.")
        if not (math.isfinite(self.stop_timeout_s) and 0 < self.stop_timeout_s <= 3600):
            raise ConfigError(f"stop_timeout_s must be in (0, 3600]. Got {self.stop_timeout_s} instead.")


@dataclass(frozen=True, slots=True)
class DaemonConfig:
    """The configuration file as written (every section optional)."""

    control: ControlConfig = field(default_factory=ControlConfig)
    events: EventsConfig = field(default_factory=EventsConfig)
    curve: CurveConfig | None = None
    profiles_dir: str | None = None
    data_root: str | None = None
    s3: S3Defaults = field(default_factory=S3Defaults)
    log: LogConfig = field(default_factory=LogConfig)
    runs: RunsConfig = field(default_factory=RunsConfig)
    base_dir: str = "."  # the folder of the file: relative paths are resolved against it (not a YAML key)


TOP_KEYS = tuple(name for name in field_names(DaemonConfig) if name != "base_dir")


@dataclass(frozen=True, slots=True)
class DaemonSettings:
    """What the daemon uses: :class:`DaemonConfig` with every default and path resolved."""

    config: DaemonConfig
    runtime_dir: Path
    control_endpoint: str
    events_endpoint: str
    profiles_dir: Path
    data_root: Path
    curve: CurveServerSettings | None

    @property
    def runs(self) -> RunsConfig:
        return self.config.runs


def load_config(path: str | Path | None) -> DaemonConfig:
    """Read a configuration file (``None``: every default); raises DocumentError listing every issue."""
    if path is None:
        return DaemonConfig()
    doc = load_file(path)
    checker = Checker(doc.file)
    checker.issues.extend(doc.issues)
    base_dir = str(Path(path).resolve().parent)
    if doc.root is None:
        if checker.issues:
            raise DocumentError(checker.issues)
        return DaemonConfig(base_dir=base_dir)
    if not isinstance(doc.root, MapNode):
        message = "the daemon configuration must be a mapping with the keys " + ", ".join(TOP_KEYS)
        checker.add(doc.root.line, "", message)
        raise DocumentError(checker.issues)
    reader = MapReader(checker, doc.root, "", TOP_KEYS)
    config: DaemonConfig | None = build(checker, reader, DaemonConfig, keys=TOP_KEYS, base_dir=base_dir)
    if checker.issues or config is None:
        raise DocumentError(checker.issues)
    return config


def default_runtime_dir(environ: Mapping[str, str] | None = None) -> Path:
    """``$RUNTIME_DIRECTORY`` (first entry), else ``$XDG_RUNTIME_DIR/acqd``, else ``/tmp/acqd-<uid>``."""
    env = os.environ if environ is None else environ
    systemd = env.get("RUNTIME_DIRECTORY", "").split(":")[0]
    if systemd:
        return Path(systemd)
    xdg = env.get("XDG_RUNTIME_DIR", "")
    if xdg:
        return Path(xdg) / "acqd"
    return Path(f"/tmp/acqd-{os.getuid()}")


def default_control_endpoint(environ: Mapping[str, str] | None = None) -> str:
    return f"ipc://{default_runtime_dir(environ) / CONTROL_SOCKET}"


def default_profiles_dir() -> Path:
    return LOCAL_PROFILES_DIR.resolve() if LOCAL_PROFILES_DIR.is_dir() else SYSTEM_PROFILES_DIR


def resolve(config: DaemonConfig, environ: Mapping[str, str] | None = None) -> DaemonSettings:
    """Fill in defaults from the environment and resolve paths; creates nothing (see :func:`ensure_runtime_dir`)."""
    runtime = default_runtime_dir(environ)
    base = Path(config.base_dir)
    curve = None
    if config.curve is not None:
        curve = CurveServerSettings(
            keys_dir=_absolute(base, config.curve.keys_dir), clients_dir=_absolute(base, config.curve.clients_dir)
        )
    profiles = _absolute(base, config.profiles_dir) if config.profiles_dir else default_profiles_dir()
    data_root = _absolute(base, config.data_root) if config.data_root else default_data_root(environ).resolve()
    return DaemonSettings(
        config=config,
        runtime_dir=runtime,
        control_endpoint=config.control.endpoint or f"ipc://{runtime / CONTROL_SOCKET}",
        events_endpoint=config.events.endpoint or f"ipc://{runtime / EVENTS_SOCKET}",
        profiles_dir=profiles,
        data_root=data_root,
        curve=curve,
    )


def ensure_runtime_dir(settings: DaemonSettings) -> Path:
    """Create the runtime folder 0700 (its parent must exist) or check that an existing one is private."""
    return ensure_private_dir(settings.runtime_dir)


def _absolute(base: Path, text: str) -> Path:
    path = Path(text).expanduser()
    return path if path.is_absolute() else (base / path).resolve()
