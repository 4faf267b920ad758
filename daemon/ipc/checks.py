"""Small validators shared by the frame-stream values; each raises ConfigError naming the field and what it accepts."""

from __future__ import annotations

import math

from daemon.errors import ConfigError


def check_int(name: str, value: object, low: int = 0, high: int | None = None) -> None:
    """``value`` is an int (not a bool) with ``low <= value`` (and ``value < high`` when given)."""
    ok = isinstance(value, int) and not isinstance(value, bool) and value >= low and (high is None or value < high)
    if not ok:
        accepted = f">= {low}" if high is None else f"in [{low}, {high})"
        raise ConfigError(f"{name} must be an integer {accepted}. Got {value!r} instead.")


def check_seconds(name: str, value: object) -> None:
    """``value`` is a finite number of seconds > 0."""
    if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value) or value <= 0:
        raise ConfigError(f"{name} must be a finite number of seconds > 0. Got {value!r} instead.")


def check_text(name: str, value: object, low: int = 1, high: int = 0xFFFF) -> None:
    """``value`` is a string of ``low`` to ``high`` UTF-8 bytes."""
    if not isinstance(value, str) or not low <= len(value.encode()) <= high:
        raise ConfigError(f"{name} must be a string of {low} to {high} UTF-8 bytes. Got {value!r} instead.")


def check_json_object(name: str, value: object) -> None:
    """``value`` is a dict with string keys (its values are checked when it is serialised)."""
    if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
        raise ConfigError(f"{name} must be a JSON object (a dict with string keys). Got {value!r} instead.")
