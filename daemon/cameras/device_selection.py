"""Choosing one device among those the GenTL producers list, with an error that lists them all.

Pure Python over plain :class:`DeviceEntry` values, so the rules are tested without a producer.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from daemon.cameras.settings import DeviceSelector
from daemon.errors import CameraError


@dataclass(frozen=True, slots=True)
class DeviceEntry:
    """What a producer says about one device; ``position`` is its place in the enumeration."""

    position: int
    vendor: str | None = None
    model: str | None = None
    serial_number: str | None = None
    user_id: str | None = None
    device_id: str | None = None

    def describe(self) -> str:
        return (
            f"#{self.position} vendor={self.vendor!r} model={self.model!r} "
            f"serial_number={self.serial_number!r} user_id={self.user_id!r}"
        )


def entry_from_properties(position: int, props: Mapping[str, Any]) -> DeviceEntry:
    """A DeviceEntry from harvesters' ``DeviceInfo.property_dict`` (missing or empty values become None)."""

    def text(key: str) -> str | None:
        value = props.get(key)
        return str(value) if value not in (None, "") else None

    return DeviceEntry(
        position=position,
        vendor=text("vendor"),
        model=text("model"),
        serial_number=text("serial_number"),
        user_id=text("user_defined_name"),
        device_id=text("id_"),
    )


def _matches(entry: DeviceEntry, selector: DeviceSelector) -> bool:
    pairs = (
        (selector.serial_number, entry.serial_number),
        (selector.model, entry.model),
        (selector.user_id, entry.user_id),
    )
    return all(wanted is None or wanted == have for wanted, have in pairs)


def _listing(devices: Sequence[DeviceEntry]) -> str:
    return "; ".join(d.describe() for d in devices) if devices else "none"


def choose_device(devices: Sequence[DeviceEntry], selector: DeviceSelector) -> DeviceEntry:
    """The one device ``selector`` designates; CameraError naming the criteria and listing the devices otherwise."""
    matching = [d for d in devices if _matches(d, selector)]
    if selector.index is not None:
        if selector.index < len(matching):
            return matching[selector.index]
        problem = f"index {selector.index} is past the {len(matching)} matching device(s)"
    elif len(matching) == 1:
        return matching[0]
    elif matching:
        problem = f"{len(matching)} devices match; add serial_number, user_id or index to choose one"
    else:
        problem = "no device matches"
    raise CameraError(f"cannot choose a camera ({selector.describe()}): {problem}. Devices found: {_listing(devices)}.")
