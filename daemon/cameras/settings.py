"""Camera settings: frozen, validated values that a profile (YAML) maps onto field by field.

``SimulatedCameraSettings`` drives :mod:`daemon.cameras.simulated`; ``GenicamCameraSettings`` drives
:mod:`daemon.cameras.genicam`. Field names are plain and documented on each field.

Design notes:
- For a GenICam camera, ``None`` means "leave the device's value alone": only what a profile names is written.
- Validation happens in ``__post_init__`` through small ``parse_*`` functions; a bad value raises
  :class:`~daemon.errors.ConfigError` naming the field, the value and what is accepted.
- ``nodes`` is frozen into a read-only mapping that keeps the profile's order (features are written in order).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal

import numpy as np

from daemon.errors import ConfigError

PatternName = Literal["radial_sine", "random", "empty"]
TriggerKind = Literal["free", "software"]
OnLost = Literal["fail", "reconnect"]
NodeValue = bool | int | float | str

PATTERNS: tuple[str, ...] = ("radial_sine", "random", "empty")
SIMULATED_DTYPES: tuple[str, ...] = ("uint8", "uint16")
MAX_PHASE_CACHE_MIB = 65536  # 64 GiB: a simulated camera's drawn frames never take more


def parse_choice(name: str, value: object, accepted: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in accepted:
        raise ConfigError(f"{name} must be one of {', '.join(accepted)}. Got {value!r} instead.")
    return value


def parse_int(name: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{name} must be an integer. Got {value!r} instead.")
    if value < minimum:
        raise ConfigError(f"{name} must be >= {minimum}. Got {value} instead.")
    return value


def parse_optional_int(name: str, value: object, minimum: int) -> int | None:
    return None if value is None else parse_int(name, value, minimum)


def parse_seconds(name: str, value: object, allow_zero: bool = True) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ConfigError(f"{name} must be a finite number of seconds. Got {value!r} instead.")
    if value < 0 or (value == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ConfigError(f"{name} must be {bound}. Got {value} instead.")
    return float(value)


def parse_optional_positive(name: str, value: object) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ConfigError(f"{name} must be a finite number. Got {value!r} instead.")
    if value <= 0:
        raise ConfigError(f"{name} must be > 0. Got {value} instead.")
    return float(value)


def parse_optional_number(name: str, value: object) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ConfigError(f"{name} must be a finite number. Got {value!r} instead.")
    return float(value)


def parse_optional_name(name: str, value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{name} must be a non-empty string. Got {value!r} instead.")
    return value


@dataclass(frozen=True, slots=True)
class SimulatedFaults:
    """Faults a simulated camera injects on demand (for tests of everything downstream).

    - ``stall_at_frame`` / ``stall_s``: frame N arrives ``stall_s`` seconds late (reads return None meanwhile).
    - ``disconnect_at_frame``: reading frame N raises CameraLost, and so does every later read.
    - ``incomplete_every``: frames whose id is a positive multiple of K arrive incomplete (rows past the middle
      are zero) and are flagged INCOMPLETE.
    - ``drop_every``: one frame id in K is skipped (frames lost upstream), so the next frame is AFTER_GAP.
    """

    stall_at_frame: int | None = None
    stall_s: float = 0.0
    disconnect_at_frame: int | None = None
    incomplete_every: int | None = None
    drop_every: int | None = None

    def __post_init__(self) -> None:
        parse_optional_int("faults.stall_at_frame", self.stall_at_frame, 0)
        parse_seconds("faults.stall_s", self.stall_s)
        parse_optional_int("faults.disconnect_at_frame", self.disconnect_at_frame, 0)
        parse_optional_int("faults.incomplete_every", self.incomplete_every, 1)
        parse_optional_int("faults.drop_every", self.drop_every, 2)


@dataclass(frozen=True, slots=True)
class SimulatedCameraSettings:
    """A simulated camera.

    - ``pattern``: ``radial_sine`` (frame k equals ``pattern.radial_sine(k, ...)``), ``random`` (frame k is a
      function of ``seed`` and k) or ``empty`` (zeros).
    - ``height``, ``width``: pixels; ``dtype``: ``uint8`` or ``uint16``; ``bits``: significant bits (default: the
      dtype's width; e.g. 12 for a 12-bit camera in uint16).
    - ``frame_period_s``: time between frames in free run; 0 = as fast as the reader reads.
    - ``trigger``: ``free`` (frames at ``frame_period_s``) or ``software`` (one frame per ``trigger()`` call).
    - ``timeout_s``: no frame for this long while acquiring makes ``read`` raise CameraTimeout (None: never).
    - ``phase_cache_mib``: memory the camera may keep drawn frames in (``radial_sine``'s 128 phases, or the one
      ``empty`` frame). The radial sine repeats every 128 frames: when all 128 fit, each is drawn once and later
      frames cost no CPU, as a real camera's DMA costs the host none (256: up to 1024x1024 uint16; 1024: 2048x2048
      uint16); when they do not, every frame is drawn (2048x2048 uint16: about 3 ms of CPU). 0: never keep frames.
    - ``faults``: see :class:`SimulatedFaults`.
    """

    pattern: PatternName = "radial_sine"
    height: int = 512
    width: int = 512
    dtype: str = "uint16"
    bits: int | None = None
    frame_period_s: float = 0.0
    trigger: TriggerKind = "free"
    seed: int = 0
    timeout_s: float | None = 5.0
    phase_cache_mib: int = 256
    faults: SimulatedFaults = field(default_factory=SimulatedFaults)

    def __post_init__(self) -> None:
        parse_choice("pattern", self.pattern, PATTERNS)
        parse_int("height", self.height, 1)
        parse_int("width", self.width, 1)
        parse_choice("dtype", self.dtype, SIMULATED_DTYPES)
        width_bits = np.dtype(self.dtype).itemsize * 8
        if self.bits is not None and not 1 <= parse_int("bits", self.bits, 1) <= width_bits:
            raise ConfigError(f"bits must be between 1 and {width_bits} for {self.dtype}. Got {self.bits} instead.")
        parse_seconds("frame_period_s", self.frame_period_s)
        parse_choice("trigger", self.trigger, ("free", "software"))
        parse_int("seed", self.seed, 0)
        if self.timeout_s is not None:
            parse_seconds("timeout_s", self.timeout_s, allow_zero=False)
        if parse_int("phase_cache_mib", self.phase_cache_mib, 0) > MAX_PHASE_CACHE_MIB:
            raise ConfigError(
                f"phase_cache_mib must be between 0 and {MAX_PHASE_CACHE_MIB}. Got {self.phase_cache_mib} instead."
            )
        if not isinstance(self.faults, SimulatedFaults):
            raise ConfigError(f"faults must be SimulatedFaults. Got {type(self.faults).__name__} instead.")

    @property
    def depth(self) -> int:
        """Significant bits per pixel."""
        return self.bits if self.bits is not None else np.dtype(self.dtype).itemsize * 8


@dataclass(frozen=True, slots=True)
class DeviceSelector:
    """Which device to open. Given fields must all match; ``index`` then picks among the matches (in the
    producers' enumeration order). Nothing given: the only device found (an error lists them if several)."""

    serial_number: str | None = None
    model: str | None = None
    user_id: str | None = None
    index: int | None = None

    def __post_init__(self) -> None:
        parse_optional_name("select.serial_number", self.serial_number)
        parse_optional_name("select.model", self.model)
        parse_optional_name("select.user_id", self.user_id)
        parse_optional_int("select.index", self.index, 0)

    def describe(self) -> str:
        given = {k: getattr(self, k) for k in ("serial_number", "model", "user_id", "index")}
        parts = [f"{k}={v!r}" for k, v in given.items() if v is not None]
        return ", ".join(parts) if parts else "no criteria"


def parse_producers(value: object) -> tuple[str, ...]:
    """One path or a sequence of paths (.cti files or folders holding them)."""
    items = (value,) if isinstance(value, str) else value
    if not isinstance(items, list | tuple):
        raise ConfigError(f"producers must be a list of .cti paths or folders. Got {value!r} instead.")
    for path in items:
        parse_optional_name("producers[]", path)
    return tuple(items)


def parse_trigger_mode(value: object) -> str | None:
    """``On``/``Off`` in any case, or a YAML boolean (YAML 1.1 reads a bare On/Off as true/false)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "On" if value else "Off"
    if isinstance(value, str) and value.lower() in ("on", "off"):
        return "On" if value.lower() == "on" else "Off"
    raise ConfigError(f"trigger_mode must be On or Off. Got {value!r} instead.")


def parse_nodes(value: object) -> Mapping[str, NodeValue]:
    if not isinstance(value, Mapping):
        raise ConfigError(f"nodes must be a mapping of feature name to value. Got {value!r} instead.")
    for name, item in value.items():
        if not isinstance(name, str) or not name:
            raise ConfigError(f"nodes keys must be feature names. Got {name!r} instead.")
        if not isinstance(item, bool | int | float | str):
            raise ConfigError(f"nodes[{name!r}] must be a bool, number or string. Got {item!r} instead.")
    return MappingProxyType(dict(value))


@dataclass(frozen=True, slots=True)
class GenicamCameraSettings:
    """A GenICam camera reached through a GenTL producer (.cti). ``None`` leaves the device's value alone.

    - ``producers``: .cti files or folders holding them; empty = the folders in ``GENICAM_GENTL64_PATH``.
    - ``select``: which device (:class:`DeviceSelector`).
    - ``width``, ``height``, ``offset_x``, ``offset_y``: region of interest in pixels.
    - ``pixel_format``: PFNC name (Mono8, Mono16, RGB8, ...); see :mod:`daemon.cameras.pixel_format`.
    - ``exposure_time_us`` (ExposureTime), ``frame_rate_hz`` (AcquisitionFrameRate; also sets
      AcquisitionFrameRateEnable when the device has it), ``gain`` (Gain).
    - ``trigger_selector``, ``trigger_mode`` (On/Off), ``trigger_source`` (e.g. Software, Line1).
    - ``nodes``: any other feature, name -> value, written in order after the fields above.
    - ``timeout_s``: no frame for this long while acquiring makes ``read`` raise CameraTimeout (None: never;
      use None with hardware triggers that may pause).
    - ``on_lost``: ``fail`` (raise CameraLost) or ``reconnect`` (``reconnect_attempts`` tries, waiting
      ``reconnect_backoff_s`` doubled each time, at most ``reconnect_backoff_max_s``).
    - ``num_buffers``: buffers announced to the producer; the camera also keeps as many frame slots in shared
      memory (:attr:`frame_slots`) and lends them to the producer too.
    """

    producers: tuple[str, ...] = ()
    select: DeviceSelector = field(default_factory=DeviceSelector)
    width: int | None = None
    height: int | None = None
    offset_x: int | None = None
    offset_y: int | None = None
    pixel_format: str | None = None
    exposure_time_us: float | None = None
    frame_rate_hz: float | None = None
    gain: float | None = None
    trigger_selector: str | None = None
    trigger_mode: str | None = None
    trigger_source: str | None = None
    nodes: Mapping[str, NodeValue] = field(default_factory=lambda: MappingProxyType({}))
    timeout_s: float | None = 5.0
    on_lost: OnLost = "fail"
    reconnect_attempts: int = 5
    reconnect_backoff_s: float = 0.5
    reconnect_backoff_max_s: float = 5.0
    num_buffers: int = 16

    def __post_init__(self) -> None:
        object.__setattr__(self, "producers", parse_producers(self.producers))
        if not isinstance(self.select, DeviceSelector):
            raise ConfigError(f"select must be a DeviceSelector. Got {type(self.select).__name__} instead.")
        for name in ("width", "height"):
            parse_optional_int(name, getattr(self, name), 1)
        for name in ("offset_x", "offset_y"):
            parse_optional_int(name, getattr(self, name), 0)
        for name in ("pixel_format", "trigger_selector", "trigger_source"):
            parse_optional_name(name, getattr(self, name))
        parse_optional_positive("exposure_time_us", self.exposure_time_us)
        parse_optional_positive("frame_rate_hz", self.frame_rate_hz)
        parse_optional_number("gain", self.gain)
        object.__setattr__(self, "trigger_mode", parse_trigger_mode(self.trigger_mode))
        object.__setattr__(self, "nodes", parse_nodes(self.nodes))
        if self.timeout_s is not None:
            parse_seconds("timeout_s", self.timeout_s, allow_zero=False)
        parse_choice("on_lost", self.on_lost, ("fail", "reconnect"))
        parse_int("reconnect_attempts", self.reconnect_attempts, 1)
        parse_seconds("reconnect_backoff_s", self.reconnect_backoff_s)
        parse_seconds("reconnect_backoff_max_s", self.reconnect_backoff_max_s)
        parse_int("num_buffers", self.num_buffers, 1)

    @property
    def frame_slots(self) -> int:
        """Frames the camera keeps in shared memory for a worker on this host (:mod:`daemon.ipc.frame_slots`),
        lent to the producer or copied into: as many as ``num_buffers``, so what it holds is twice ``num_buffers``
        frames."""
        return self.num_buffers


CameraSettings = SimulatedCameraSettings | GenicamCameraSettings
