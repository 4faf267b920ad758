"""The ``cameras:`` section of a profile: each camera's driver settings and the array it writes.

One entry becomes a :class:`CameraProfile`: the driver settings (``SimulatedCameraSettings`` or
``GenicamCameraSettings``, read field by field from their type hints) and the ``ArraySettings`` of its array
(dimensions, data type, output key, plus the store-wide compression and multiscale settings).
:func:`camera_identity` says which device an entry drives (two live runs never share one).

Design notes:
- Rules of one kind of settings stay in their classes; this module only adds the rules that join a camera to its
  array: the frame's height and width equal the last two dimensions, the camera's pixel type equals the array's
  data type (and sets it when ``data_type`` is left out), frames are monochrome ``(y, x)``.
- Errors from ``ArraySettings`` and ``StreamSettings`` are placed by :func:`array_place`: a message naming
  ``dimension 'y'`` goes to that dimension's field, one naming a store-wide setting to its line under ``storage:``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from daemon.cameras import pixel_format
from daemon.cameras.settings import CameraSettings, GenicamCameraSettings, SimulatedCameraSettings
from daemon.profile_fields import (
    Checker,
    MapReader,
    Place,
    build,
    construct,
    field_names,
    place_by_words,
    with_suggestion,
)
from daemon.storage.settings import ArraySettings, CompressionSettings, Dimension
from daemon.strict_yaml import MapNode, Node

DRIVERS: dict[str, type[SimulatedCameraSettings] | type[GenicamCameraSettings]] = {
    "simulated": SimulatedCameraSettings,
    "genicam": GenicamCameraSettings,
}
CAMERA_KEYS = ("name", "driver", "settings", "output_key", "data_type", "dimensions")
DIMENSION_KEYS = field_names(Dimension)
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_DIMENSION = re.compile(r"dimension '([^']*)'")


@dataclass(frozen=True, slots=True)
class CameraProfile:
    """One camera of a profile and the array it writes."""

    name: str
    settings: CameraSettings
    array: ArraySettings

    @property
    def driver(self) -> str:
        return "simulated" if isinstance(self.settings, SimulatedCameraSettings) else "genicam"

    @property
    def frame_rate_hz(self) -> float | None:
        """Frames per second when the settings fix it (free-running simulated camera, GenICam frame_rate_hz)."""
        if isinstance(self.settings, SimulatedCameraSettings):
            free = self.settings.trigger == "free" and self.settings.frame_period_s > 0
            return 1.0 / self.settings.frame_period_s if free else None
        return self.settings.frame_rate_hz


@dataclass(frozen=True, slots=True)
class StoreWide:
    """What every array of the store shares, with the places of those settings for error messages."""

    compression: CompressionSettings | None
    downsampling_method: str | None
    max_levels: int | None
    places: Mapping[str, Place]


@dataclass(slots=True)
class CameraEntry:
    """A camera being read: its reader, its dimension readers, and what has been read so far."""

    reader: MapReader
    dimensions: list[tuple[str, MapReader]]
    profile: CameraProfile | None = None

    def place(self, message: str, store_wide: StoreWide) -> Place:
        """Where an ArraySettings/StreamSettings error about this camera's array belongs."""
        named = _DIMENSION.search(message)
        if named is not None:
            for name, dimension in self.dimensions:
                if name == named.group(1):
                    return dimension.place_of(message)
        words = {key: self.reader.place(key) for key in ("output_key", "data_type", "dimensions")}
        return place_by_words(message, {**words, **store_wide.places}, self.reader.place())


def read_camera(checker: Checker, node: Node, path: str, store_wide: StoreWide, several: bool) -> CameraEntry | None:
    """Read one ``cameras[i]`` entry; ``entry.profile`` is None when it has issues (they are recorded)."""
    if not isinstance(node, MapNode):
        checker.add(node.line, path, "must be a mapping with keys " + ", ".join(CAMERA_KEYS) + ".")
        return None
    camera = MapReader(checker, node, path, CAMERA_KEYS)
    entry = CameraEntry(camera, [])
    mark = checker.mark()
    name = camera.string("name", required=True)
    if name is not None and not _NAME.fullmatch(name):
        checker.add(camera.line("name"), camera.at("name"), _name_problem(name))
    settings = _read_settings(checker, camera)
    output_key = camera.string("output_key", required=several)
    data_type = _data_type(checker, camera, settings)
    dimensions = _read_dimensions(checker, camera, entry)
    if dimensions is not None and settings is not None:
        _check_frame_shape(checker, settings, entry, dimensions)
    if not checker.clean_since(mark) or name is None or settings is None or dimensions is None or data_type is None:
        return entry
    array = construct(
        checker,
        lambda: ArraySettings(
            output_key=output_key or "",
            data_type=data_type,
            dimensions=dimensions,
            compression=store_wide.compression,
            downsampling_method=store_wide.downsampling_method,
            max_levels=store_wide.max_levels,
        ),
        lambda message: entry.place(message, store_wide),
    )
    if array is not None:
        entry.profile = CameraProfile(name, settings, array)
    return entry


def _name_problem(name: str) -> str:
    return f"must be 1 to 64 letters, digits, '_', '.' or '-', starting with a letter or digit. Got {name!r} instead."


def _read_settings(checker: Checker, camera: MapReader) -> CameraSettings | None:
    driver = camera.string("driver", required=True)
    if driver is None:
        return None
    cls = DRIVERS.get(driver)
    if cls is None:
        message = with_suggestion(f"must be one of {', '.join(sorted(DRIVERS))}. Got {driver!r} instead.")
        checker.add(camera.line("driver"), camera.at("driver"), message)
        return None
    reader = camera.mapping("settings", field_names(cls))
    if reader is None:
        if camera.has("settings"):
            return None  # not a mapping: the issue is recorded
        return construct(checker, lambda: cls(), camera.place_of)
    built: CameraSettings | None = build(checker, reader, cls)
    if isinstance(built, GenicamCameraSettings) and built.pixel_format is not None:
        place = reader.place("pixel_format")
        found = construct(checker, lambda: pixel_format.by_name(built.pixel_format or ""), lambda _: place)
        if found is not None and found.channels != 1:
            mono = ", ".join(name for name, fmt in pixel_format.SUPPORTED.items() if fmt.channels == 1)
            message = (
                f"must be a monochrome format ({mono}): arrays store (y, x) frames. Got {built.pixel_format!r} instead."
            )
            checker.add(place.line, place.path, message)
            return None
        return built if found is not None else None
    return built


def camera_dtype(settings: CameraSettings) -> np.dtype[Any] | None:
    """The numpy dtype of the camera's frames when the settings fix it."""
    if isinstance(settings, SimulatedCameraSettings):
        return np.dtype(settings.dtype)
    if settings.pixel_format is None:
        return None
    return pixel_format.by_name(settings.pixel_format).dtype


def _data_type(checker: Checker, camera: MapReader, settings: CameraSettings | None) -> str | None:
    given = camera.string("data_type")
    pixels = camera_dtype(settings) if settings is not None else None
    source = "settings.dtype" if isinstance(settings, SimulatedCameraSettings) else "settings.pixel_format"
    if given is None:
        if settings is not None and pixels is None:
            message = "is required: the camera's pixel type is not known before it runs (or set settings.pixel_format)."
            checker.add(camera.line("data_type"), camera.at("data_type"), message)
        return None if pixels is None else pixels.name
    try:
        wanted = np.dtype(given)
    except (TypeError, ValueError):
        return given  # not a dtype at all: ArraySettings says what is accepted
    if pixels is not None and wanted != pixels:
        message = f"must equal the camera's pixel type {pixels.name} ({source}). Got {given!r} instead."
        checker.add(camera.line("data_type"), camera.at("data_type"), message)
    return given


def _read_dimensions(checker: Checker, camera: MapReader, entry: CameraEntry) -> list[Dimension] | None:
    items = camera.sequence("dimensions", required=True)
    mark = checker.mark()
    dimensions: list[Dimension] = []
    for node, path in items:
        if not isinstance(node, MapNode):
            checker.add(node.line, path, "must be a mapping with keys " + ", ".join(DIMENSION_KEYS) + ".")
            continue
        reader = MapReader(checker, node, path, DIMENSION_KEYS)
        name_node = reader.values.get("name")
        entry.dimensions.append((getattr(name_node, "text", ""), reader))
        dimension = build(checker, reader, Dimension)
        if dimension is not None:
            dimensions.append(dimension)
    return dimensions if items and checker.clean_since(mark) else None


def _check_frame_shape(checker: Checker, settings: CameraSettings, entry: CameraEntry, dims: list[Dimension]) -> None:
    """The last two dimensions are the frame's height and width, when the camera settings fix them."""
    if len(dims) < 2:
        return  # ArraySettings reports too few dimensions
    for dimension, (_, reader), side in zip(dims[-2:], entry.dimensions[-2:], ("height", "width"), strict=True):
        frame = getattr(settings, side)
        if frame is not None and dimension.array_size_px != frame:
            got = dimension.array_size_px
            message = f"must equal the camera's frame {side} ({frame}, settings.{side}). Got {got} instead."
            checker.add(reader.line("array_size_px"), reader.at("array_size_px"), message)


def camera_identity(camera: CameraProfile) -> str:
    """What makes two cameras the same device: the simulated camera's name, or GenICam producers + selector."""
    settings = camera.settings
    if isinstance(settings, SimulatedCameraSettings):
        return f"simulated:{camera.name}"
    producers = ",".join(sorted(str(Path(p).resolve()) for p in settings.producers)) or "$GENICAM_GENTL64_PATH"
    return f"genicam:{producers}:{settings.select.describe()}"
