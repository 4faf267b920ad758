"""Acquisition profiles: one YAML file saying which cameras to run, for how long, and where to store their frames.

A profile has four sections (every key is documented in ``config/profiles/*.yaml``)::

    cameras:      # one or more; each writes one array of the store (see daemon/profile_cameras.py)
      - {name, driver: simulated|genicam, settings: {...}, output_key, data_type, dimensions: [...]}
    acquisition:  {frames | duration_s | until_stopped, queue_bytes, on_queue_full: block|drop,
                   incomplete: drop|store, metrics_interval_s}
    storage:      {store, version, overwrite, compression, multiscale, max_threads, s3: {endpoint, region, ...},
                   worker_endpoint, allow_remote_worker}
    metadata:     {...}  # free-form JSON stored in the root group's attributes

:func:`load_profile` reads a file strictly (:mod:`daemon.strict_yaml`) and returns a :class:`Profile` holding the
settings objects the run uses (camera settings, :class:`~daemon.storage.settings.StreamSettings`,
:class:`AcquisitionSettings`), or raises :class:`~daemon.strict_yaml.DocumentError` listing every issue found, each
with the file, the line and the field path.

Design notes:
- The settings classes own their rules; this module adds only the rules that join sections (stop condition,
  frame count against a bounded array, the store inside the data root) and places every error.
- ``StreamSettings`` is built step by step (a probe for the store-wide fields, then one camera more at a time), so
  an error about the version, sharding or output keys lands on the camera that caused it, and the other cameras
  are still checked.
- ``cameras[i]`` writes ``stream.arrays[i]``.
"""

from __future__ import annotations

import functools
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from daemon.errors import ConfigError
from daemon.profile_cameras import CameraEntry, CameraProfile, StoreWide, read_camera
from daemon.profile_fields import (
    JSON,
    Checker,
    MapReader,
    Place,
    build,
    construct,
    field_names,
    place_by_words,
    read_json,
    read_scalar,
)
from daemon.profile_paths import default_data_root, resolve_store
from daemon.profile_worker import parse_worker_endpoint
from daemon.storage.s3_names import is_s3_url
from daemon.storage.s3_settings import S3Settings
from daemon.storage.settings import ArraySettings, CompressionSettings, Dimension, StreamSettings
from daemon.strict_yaml import (
    MAX_BYTES,
    Document,
    DocumentError,
    Kind,
    MapNode,
    Node,
    Scalar,
    SeqNode,
    load_file,
    load_text,
)

__all__ = [
    "AcquisitionSettings",
    "CameraProfile",
    "Profile",
    "load_profile",
    "parse_document",
    "parse_profile",
    "parse_size",
]

OnQueueFull = Literal["block", "drop"]
Incomplete = Literal["drop", "store"]
DEFAULT_QUEUE_BYTES = 256 * 1024 * 1024
MIN_QUEUE_BYTES = 1024 * 1024

TOP_KEYS = ("cameras", "acquisition", "storage", "metadata")
ACQUISITION_KEYS = (
    "frames",
    "duration_s",
    "until_stopped",
    "queue_bytes",
    "on_queue_full",
    "incomplete",
    "metrics_interval_s",
)
STORAGE_KEYS = (
    "store",
    "version",
    "overwrite",
    "compression",
    "multiscale",
    "max_threads",
    "s3",
    "worker_endpoint",
    "allow_remote_worker",
)
MULTISCALE_KEYS = ("method", "max_levels")

_SIZE = re.compile(r"([0-9]+(?:\.[0-9]+)?) ?(B|kB|KB|MB|GB|KiB|MiB|GiB)?")
_UNITS = {"B": 1, "kB": 10**3, "KB": 10**3, "MB": 10**6, "GB": 10**9, "KiB": 2**10, "MiB": 2**20, "GiB": 2**30}


def parse_size(text: str) -> int:
    """``"256 MiB"`` -> 268435456 (units B, kB/KB, MB, GB, KiB, MiB, GiB; none means bytes)."""
    found = _SIZE.fullmatch(text.strip())
    if not found:
        raise ConfigError(
            f"must be a number of bytes or a size like '256 MiB' (B, kB, MB, GB, KiB, MiB, GiB). Got {text!r} instead."
        )
    return int(float(found.group(1)) * _UNITS[found.group(2) or "B"])


@dataclass(frozen=True, slots=True)
class AcquisitionSettings:
    """How long to acquire, and the frame queue between cameras and storage.

    - exactly one of ``frames`` (per camera), ``duration_s`` or ``until_stopped=True``;
    - ``queue_bytes``: memory for frames waiting for storage (per camera);
    - ``on_queue_full``: ``block`` (the camera waits: frames may be lost in the driver) or ``drop`` (newest frames
      are dropped and counted).
    - ``incomplete``: what to do with frames the device delivered partially: ``drop`` (counted) or ``store``
      (stored, flagged INCOMPLETE in the per-frame table).
    - ``metrics_interval_s``: seconds between ``run_metrics`` log events.
    """

    frames: int | None = None
    duration_s: float | None = None
    until_stopped: bool = False
    queue_bytes: int = DEFAULT_QUEUE_BYTES
    on_queue_full: OnQueueFull = "block"
    incomplete: Incomplete = "drop"
    metrics_interval_s: float = 5.0

    def __post_init__(self) -> None:
        given = [name for name in ("frames", "duration_s") if getattr(self, name) is not None]
        given += ["until_stopped"] if self.until_stopped else []
        if len(given) != 1:
            got = " and ".join(given) if given else "none"
            raise ConfigError(f"needs exactly one of frames, duration_s or until_stopped: true. Got {got}.")
        if self.frames is not None and (isinstance(self.frames, bool) or self.frames < 1):
            raise ConfigError(f"frames must be >= 1. Got {self.frames} instead.")
        if self.duration_s is not None and not (math.isfinite(self.duration_s) and self.duration_s > 0):
            raise ConfigError(f"duration_s must be a finite number > 0. Got {self.duration_s} instead.")
        if self.queue_bytes < MIN_QUEUE_BYTES:
            raise ConfigError(f"queue_bytes must be >= {MIN_QUEUE_BYTES} (1 MiB). Got {self.queue_bytes} instead.")
        if self.on_queue_full not in ("block", "drop"):
            raise ConfigError(f"on_queue_full must be one of block, drop. Got {self.on_queue_full!r} instead.")
        if self.incomplete not in ("drop", "store"):
            raise ConfigError(f"incomplete must be one of drop, store. Got {self.incomplete!r} instead.")
        interval = self.metrics_interval_s
        if isinstance(interval, bool) or not (math.isfinite(interval) and 0.1 <= interval <= 3600):
            raise ConfigError(f"metrics_interval_s must be between 0.1 and 3600 seconds. Got {interval} instead.")


@dataclass(frozen=True, slots=True)
class Profile:
    """A validated profile: ``cameras[i]`` writes ``stream.arrays[i]``.

    ``worker_endpoint``: where an external storage worker connects (None: the run spawns its own worker)."""

    file: str
    data_root: Path
    cameras: tuple[CameraProfile, ...]
    acquisition: AcquisitionSettings
    stream: StreamSettings
    worker_endpoint: str | None = None


def load_profile(path: str | Path, data_root: Path | None = None, max_bytes: int = MAX_BYTES) -> Profile:
    """Read and validate the profile at ``path``; raises DocumentError listing every issue found.

    ``data_root`` defaults to :func:`~daemon.profile_paths.default_data_root` (``$ACQD_DATA_ROOT`` or ``./data``)."""
    return _parse(load_file(path, max_bytes), data_root)


def parse_profile(text: str, file: str = "<profile>", data_root: Path | None = None) -> Profile:
    """Validate a profile given as text (``file`` names it in errors)."""
    return _parse(load_text(text, file), data_root)


def parse_document(doc: Document, data_root: Path | None = None) -> Profile:
    """Validate an already loaded document (the daemon applies request overrides to it first)."""
    return _parse(doc, data_root)


def _parse(doc: Document, data_root: Path | None) -> Profile:
    checker = Checker(doc.file)
    checker.issues.extend(doc.issues)
    root_dir = data_root if data_root is not None else default_data_root()
    if not isinstance(doc.root, MapNode):
        line = doc.root.line if doc.root is not None else 1
        checker.add(line, "", "a profile must be a mapping with the keys " + ", ".join(TOP_KEYS) + ".")
        raise DocumentError(checker.issues)
    top = MapReader(checker, doc.root, "", TOP_KEYS)
    storage = _read_storage(checker, top, root_dir)
    entries = _read_cameras(checker, top, storage.wide if storage else StoreWide(None, None, None, {}))
    acquisition, frames_place = _read_acquisition(checker, top)
    metadata = _read_metadata(checker, top)
    stream = _assemble_stream(checker, top, storage, entries, metadata) if storage else None
    worker_endpoint = _read_worker_endpoint(checker, storage.reader) if storage else None
    if checker.issues or stream is None or acquisition is None:
        raise DocumentError(checker.issues)
    cameras = tuple(entry.profile for entry in entries if entry.profile is not None)
    _check_frame_count(checker, frames_place, acquisition, cameras)
    if checker.issues:
        raise DocumentError(checker.issues)
    return Profile(doc.file, root_dir.resolve(), cameras, acquisition, stream, worker_endpoint)


@dataclass(frozen=True, slots=True)
class _Storage:
    """The ``storage:`` section as read: StreamSettings keyword arguments and what every array shares."""

    reader: MapReader
    kwargs: dict[str, Any]
    wide: StoreWide


def _read_storage(checker: Checker, top: MapReader, data_root: Path) -> _Storage | None:
    storage = top.mapping("storage", STORAGE_KEYS, required=True)
    if storage is None:
        return None
    store_path = _store_path(checker, storage, data_root)
    kwargs: dict[str, Any] = {"store_path": store_path}
    for key, read in (("version", storage.integer), ("overwrite", storage.boolean), ("max_threads", storage.integer)):
        value = read(key)
        if value is not None:
            kwargs[key] = value
    on_s3 = store_path is not None and is_s3_url(store_path)
    s3_reader = storage.mapping("s3", field_names(S3Settings))
    if s3_reader is not None:
        kwargs["s3"] = build(checker, s3_reader, S3Settings)
        if store_path is not None and not on_s3:
            checker.add(storage.line("s3"), storage.at("s3"), "is only for a store given as an s3:// URL.")
    elif on_s3:
        kwargs["s3"] = S3Settings()  # AWS defaults; credentials from boto3's usual sources
    compression_reader = storage.mapping("compression", field_names(CompressionSettings))
    compression = build(checker, compression_reader, CompressionSettings) if compression_reader else None
    multiscale = storage.mapping("multiscale", MULTISCALE_KEYS)
    places = {
        "compression": storage.place("compression"),
        "downsampling_method": multiscale.place("method") if multiscale else storage.place("multiscale"),
        "max_levels": multiscale.place("max_levels") if multiscale else storage.place("multiscale"),
    }
    wide = StoreWide(
        compression,
        multiscale.string("method") if multiscale else None,
        multiscale.integer("max_levels") if multiscale else None,
        places,
    )
    return _Storage(storage, kwargs, wide)


def _read_worker_endpoint(checker: Checker, storage: MapReader) -> str | None:
    """``storage.worker_endpoint`` (checked with ``allow_remote_worker``), or None for a spawned worker."""
    allow_remote = storage.boolean("allow_remote_worker")
    endpoint = storage.string("worker_endpoint")
    if endpoint is None:
        return None
    place = storage.place("worker_endpoint")
    parsed: str | None = construct(
        checker, lambda: parse_worker_endpoint(endpoint, bool(allow_remote)), lambda _: place
    )
    return parsed


def _store_path(checker: Checker, storage: MapReader, data_root: Path) -> str | None:
    store = storage.string("store", required=True)
    if store is None:
        return None
    place = storage.place("store")
    resolved: str | None = construct(checker, lambda: resolve_store(store, data_root), lambda _: place)
    return resolved


def _read_cameras(checker: Checker, top: MapReader, wide: StoreWide) -> list[CameraEntry]:
    items = top.sequence("cameras", required=True)
    if top.has("cameras") and isinstance(top.values["cameras"], SeqNode) and not items:
        checker.add(top.line("cameras"), "cameras", "must list at least one camera.")
    entries: list[CameraEntry] = []
    names: dict[str, str] = {}
    for node, path in items:
        entry = read_camera(checker, node, path, wide, several=len(items) > 1)
        if entry is None:
            continue
        entries.append(entry)
        name = entry.reader.values.get("name")
        if isinstance(name, Scalar) and name.kind is Kind.STR:
            if name.text in names:
                checker.add(name.line, entry.reader.at("name"), f"duplicate camera name (also {names[name.text]}).")
            names.setdefault(name.text, path)
    return entries


def _read_acquisition(checker: Checker, top: MapReader) -> tuple[AcquisitionSettings | None, Place]:
    """The acquisition settings, and the place of ``frames`` (for rules checked later)."""
    acquisition = top.mapping("acquisition", ACQUISITION_KEYS, required=True)
    if acquisition is None:
        return None, top.place("acquisition")
    frames_place = acquisition.place("frames")
    extra: dict[str, int] = {}
    node = acquisition.node_of("queue_bytes")
    if node is not None:
        size = _queue_bytes(checker, acquisition, node)
        if size is None:
            return None, frames_place
        extra["queue_bytes"] = size
    keys = ("frames", "duration_s", "until_stopped", "on_queue_full", "incomplete", "metrics_interval_s")

    def where(message: str) -> Place:
        return acquisition.place() if message.startswith("needs exactly one") else acquisition.place_of(message)

    settings: AcquisitionSettings | None = build(checker, acquisition, AcquisitionSettings, keys, where=where, **extra)
    return settings, frames_place


def _queue_bytes(checker: Checker, acquisition: MapReader, node: Node) -> int | None:
    """``queue_bytes``: an integer, or a string with a unit (``256 MiB``)."""
    if isinstance(node, Scalar) and node.kind is Kind.STR:
        place = acquisition.place("queue_bytes")
        return construct(checker, lambda: parse_size(node.text), lambda _: place)
    size: int | None = read_scalar(checker, node, acquisition.at("queue_bytes"), "int")
    return size


def _read_metadata(checker: Checker, top: MapReader) -> dict[str, JSON] | None:
    node = top.node_of("metadata")
    if node is None:
        return None
    if not isinstance(node, MapNode):
        checker.add(node.line, "metadata", "must be a mapping (stored as JSON in the root group's attributes).")
        return None
    value = read_json(checker, node, "metadata")
    return value if isinstance(value, dict) else None


_PROBE = ArraySettings(
    dimensions=(Dimension("t", "time", 0, 1), Dimension("y", "space", 1, 1), Dimension("x", "space", 1, 1))
)


def _assemble_stream(
    checker: Checker, top: MapReader, storage: _Storage, entries: list[CameraEntry], metadata: dict[str, JSON] | None
) -> StreamSettings | None:
    """StreamSettings, checked store-wide first (with a probe array), then adding one camera's array at a time."""
    kwargs = dict(storage.kwargs, custom_metadata=metadata)
    if kwargs["store_path"] is None or ("s3" in kwargs and kwargs["s3"] is None):
        return None  # the store or its S3 settings have issues
    words = {key: storage.reader.place(key) for key in STORAGE_KEYS}
    words |= {"store_path": storage.reader.place("store"), "custom_metadata": top.place("metadata")}

    def stream_place(message: str) -> Place:
        return place_by_words(message, words, storage.reader.place())

    if construct(checker, lambda: StreamSettings(arrays=[_PROBE], **kwargs), stream_place) is None:
        return None
    arrays: list[ArraySettings] = []
    for entry in entries:
        if entry.profile is None:
            continue
        array = entry.profile.array
        add = functools.partial(StreamSettings, arrays=[*arrays, array], **kwargs)
        added = construct(checker, add, functools.partial(entry.place, store_wide=storage.wide))
        if added is not None:
            arrays.append(array)
    if len(arrays) != len(entries) or not arrays:
        return None
    return StreamSettings(arrays=arrays, **kwargs)


def _check_frame_count(
    checker: Checker, place: Place, acquisition: AcquisitionSettings, cameras: tuple[CameraProfile, ...]
) -> None:
    """``frames`` must fit in every array whose first dimension is bounded."""
    if acquisition.frames is None:
        return
    for camera in cameras:
        dims = camera.array.dimensions
        if dims[0].array_size_px == 0:
            continue
        capacity = math.prod(d.array_size_px for d in dims[:-2])
        if acquisition.frames > capacity:
            sizes = " x ".join(f"{d.name} {d.array_size_px}" for d in dims[:-2])
            message = (
                f"must be at most {capacity}: the array of camera {camera.name!r} holds {capacity} frames "
                f"({sizes}). Got {acquisition.frames} instead."
            )
            checker.add(place.line, place.path, message)
