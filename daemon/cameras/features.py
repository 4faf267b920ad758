"""Checked reads and writes of a GenICam device's features (the GenApi node map).

A write is checked before it is made, so a ConfigError says what the device offers: close feature names for a
missing one, the access mode for a read-only or unavailable one, ``[min, max]`` and the increment for a number,
the entries for an enumeration.

Design notes:
- Duck-typed over the genicam node map (``has_node``, ``get_node``, ``nodes``) so that only
  :mod:`daemon.cameras.genicam` imports genicam; it passes the vendor exception types to translate. The interface
  and access-mode numbers below are GenApi's ``EInterfaceType`` and ``EAccessMode`` values (checked by a test).
"""

from __future__ import annotations

import difflib
from typing import Any

from daemon.cameras.settings import NodeValue
from daemon.errors import CameraError, ConfigError

INTEGER, BOOLEAN, COMMAND, FLOAT, STRING, ENUMERATION = 2, 3, 4, 5, 6, 9
VALUE_TYPES = frozenset({INTEGER, BOOLEAN, COMMAND, FLOAT, STRING, ENUMERATION})
WRITE_ONLY, READ_WRITE = 2, 4
ACCESS_NAMES = {
    0: "not implemented (NI)",
    1: "not available now (NA)",
    2: "write-only",
    3: "read-only",
    4: "read-write",
}
_LISTED = 40  # feature names listed when none is close
_TAKES = {BOOLEAN: "true or false", STRING: "a string", COMMAND: "true (execute)"}


def brief(error: BaseException) -> str:
    """The first clause of a genicam exception message (the rest repeats file and line)."""
    return str(error).split(" : ")[0].strip() or type(error).__name__


class FeatureAccess:
    """One device's features: ``read``, checked ``write``, ``execute``; errors name the device by ``label``."""

    def __init__(self, node_map: Any, label: str, vendor_errors: tuple[type[BaseException], ...]) -> None:
        self._map = node_map
        self._label = label
        self._vendor_errors = vendor_errors

    @property
    def label(self) -> str:
        return self._label

    def names(self) -> list[str]:
        """The value features (not categories, entries, ports or helper nodes outside the feature tree)."""
        values = [n.node for n in self._map.nodes if int(n.node.principal_interface_type) in VALUE_TYPES]
        features = [n.name for n in values if n.is_feature()]
        return features or [n.name for n in values]

    def has(self, name: str) -> bool:
        return bool(self._map.has_node(name))

    def node(self, name: str) -> Any:
        if not self.has(name):
            names = self.names()
            lowered = {n.lower(): n for n in names}
            close = [lowered[m] for m in difflib.get_close_matches(name.lower(), list(lowered), n=5, cutoff=0.6)]
            offered = sorted(names)
            listing = ", ".join(offered[:_LISTED]) + (
                f" and {len(offered) - _LISTED} more" if len(offered) > _LISTED else ""
            )
            hint = f"close names: {', '.join(close)}" if close else f"it offers: {listing}"
            raise ConfigError(f"{self._label} has no feature {name!r}; {hint}.")
        return self._map.get_node(name)

    def read(self, name: str) -> Any:
        node = self.node(name)
        try:
            return node.value
        except self._vendor_errors as error:
            raise CameraError(f"{self._label}: reading {name} failed: {brief(error)}.") from error

    def probe(self, name: str = "Width") -> None:
        """Read ``name`` from the device itself, not from the node map's cache (every node is invalidated, since a
        feature's cache may sit in a register node below it); CameraError if the device does not answer."""
        if not self.has(name):
            return
        try:
            for item in self._map.nodes:
                item.node.invalidate_node()
            _ = self._map.get_node(name).value
        except self._vendor_errors as error:
            raise CameraError(f"{self._label}: the device does not answer: {brief(error)}.") from error

    def execute(self, name: str) -> None:
        node = self.node(name)
        try:
            node.execute()
        except self._vendor_errors as error:
            raise CameraError(f"{self._label}: {name} failed: {brief(error)}.") from error

    def write(self, name: str, value: NodeValue) -> None:
        node = self.node(name)
        mode = int(node.get_access_mode())
        if mode not in (WRITE_ONLY, READ_WRITE):
            access = ACCESS_NAMES.get(mode, str(mode))
            raise ConfigError(f"{self._label}: feature {name} is {access}; cannot set it to {value!r}.")
        kind = int(node.node.principal_interface_type)
        checked = self._check(name, node, kind, value)
        try:
            if kind == COMMAND:
                node.execute()
            else:
                node.value = checked
        except self._vendor_errors as error:
            raise ConfigError(f"{self._label} refused {name}={value!r}: {brief(error)}.") from error

    def _check(self, name: str, node: Any, kind: int, value: NodeValue) -> NodeValue:
        numeric = isinstance(value, int | float) and not isinstance(value, bool)
        if kind == ENUMERATION:
            entries = tuple(node.symbolics)
            if value not in entries:
                raise ConfigError(f"{self._label}: {name}={value!r} is not offered; entries: {', '.join(entries)}.")
            return value
        if kind == INTEGER:
            if not numeric or float(value) != int(value):
                raise ConfigError(f"{self._label}: {name} takes an integer. Got {value!r} instead.")
            return self._check_int(name, node, int(value))
        if kind == FLOAT:
            if not numeric:
                raise ConfigError(f"{self._label}: {name} takes a number. Got {value!r} instead.")
            low, high = float(node.min), float(node.max)
            if not low <= float(value) <= high:
                unit = f" {node.unit}" if node.unit else ""
                raise ConfigError(f"{self._label}: {name}={value} is out of range [{low:g}, {high:g}]{unit}.")
            return float(value)
        if (kind == BOOLEAN and isinstance(value, bool)) or (kind == STRING and isinstance(value, str)):
            return value
        if kind == COMMAND and value is True:
            return value
        raise ConfigError(f"{self._label}: {name} takes {_TAKES.get(kind, 'no value')}. Got {value!r} instead.")

    def _check_int(self, name: str, node: Any, value: int) -> int:
        low, high, inc = int(node.min), int(node.max), int(node.inc)
        if not low <= value <= high:
            raise ConfigError(f"{self._label}: {name}={value} is out of range [{low}, {high}] (increment {inc}).")
        if inc > 1 and (value - low) % inc:
            below = value - (value - low) % inc
            raise ConfigError(
                f"{self._label}: {name}={value} is not min + k*increment (min {low}, increment {inc}); "
                f"nearest: {below}, {below + inc}."
            )
        return value
