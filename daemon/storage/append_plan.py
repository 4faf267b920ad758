"""Appending to an existing store (a resumed run): where each image continues, and the gap it leaves, recorded.

:func:`plan_append` reads what the store's metadata claims and checks it against the stream settings, before
anything is written::

    plan = plan_append(store, settings)                 # ConfigError naming field, value, expected on a mismatch
    stream = ZarrStream(settings, store=store, append=plan)
    record_resume(store, version, key, resume_record(plan.image(key), run_id=..., resumes=...))

Rules (what a data user sees):
- Every level of every image must exist and match the settings exactly: dtype, chunk grid, shards, codecs, fill
  value, dimension names, the fixed dimensions' sizes (everything but the claimed size of dimension 0). A
  mismatch is a ConfigError naming the array, the field, the store's value and the one the settings give.
- Nothing already written is written again: an image continues at ``at_outer``, the first index of dimension 0 at
  or past every level's claim that starts a fresh row of storage objects (a shard row, or a chunk row unsharded).
  Frame indices (level 0, acquisition order) ``claimed_before .. at_index`` are the *gap*: never written by the
  resumed run, they read as the fill value, unless the interrupted run's close already wrote them (its ragged
  end: fill value too) or, at a coarser level, the interrupted run stored them without its metadata claiming them
  yet (then they hold what it downsampled).
- Multiscale: supported when dimension 0 is not downsampled (time, channel, other): every level then starts at the
  same index and a fresh downsampler sees whole blocks. A pyramid whose dimension 0 is of type space is refused.
- A fixed-size dimension 0 grows its claim like an unbounded one while running but claims its whole size once
  closed; resuming it needs room past the aligned start, else it is refused.
- The gap is recorded (:func:`record_resume`) in the image group's attributes under ``acqd.resumes`` (a list,
  one entry per resume, next to the OME metadata), and in the per-frame table (:mod:`daemon.storage.frame_table`:
  rows flagged as padding or lost).

Design notes:
- Pure reads: ``Store.get`` of a few JSON documents, so a local folder and an S3 prefix work alike.
- ``claimed`` is dimension-0 *indices* (what ``shape[0]`` says); frame counts are indices times the frames per
  index (the product of the other non-spatial sizes).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from daemon.errors import ConfigError, StorageError
from daemon.storage import metadata
from daemon.storage.array_writer import WriterStart
from daemon.storage.codec import ChunkCodec, JSONDict, normal_v2_compressor
from daemon.storage.image_writer import level0_layout
from daemon.storage.layout import ArrayLayout
from daemon.storage.multiscale import plan_image_levels
from daemon.storage.settings import ArraySettings, DimensionType, StreamSettings, ZarrVersion
from daemon.storage.sink import Store

ACQD_ATTRIBUTE = "acqd"
RESUMES = "resumes"
TABLE_ARRAY = "frames/frame_id"  # the frame table's row count (see daemon.storage.frame_table)
_IGNORED_FIELDS = frozenset({"shape", "attributes"})
_FIRST_FIELDS = ("zarr_format", "node_type", "data_type", "dtype")  # reported first: the most telling mismatch


@dataclass(frozen=True, slots=True)
class ImageAppend:
    """Where one image (all its levels) continues."""

    key: str
    claimed_outer: tuple[int, ...]  # per level: the dimension-0 size its metadata claims
    at_outer: int  # the dimension-0 index the resumed run starts at (every level)
    frames_per_outer: int  # level-0 frames per index of dimension 0
    table_rows: int  # rows the frame table claims (0 when there is none)

    @property
    def claimed_before(self) -> int:
        """Level-0 frame slots the store claimed before the resume."""
        return self.claimed_outer[0] * self.frames_per_outer

    @property
    def at_index(self) -> int:
        """The level-0 frame index of the resumed run's first frame."""
        return self.at_outer * self.frames_per_outer

    @property
    def padding_frames(self) -> int:
        """Frame slots between the claim and the resumed run's first frame (never written by the resume)."""
        return self.at_index - self.claimed_before

    def starts(self) -> tuple[WriterStart, ...]:
        return tuple(WriterStart(claimed, self.at_outer) for claimed in self.claimed_outer)


@dataclass(frozen=True, slots=True)
class AppendPlan:
    """Where every image of a store continues (see :func:`plan_append`)."""

    store_url: str
    version: ZarrVersion
    images: Mapping[str, ImageAppend]

    def image(self, key: str) -> ImageAppend:
        found = self.images.get(key)
        if found is None:
            known = sorted(self.images)
            raise ConfigError(f"the append plan of {self.store_url} has no array {key!r}; it has {known}.")
        return found

    def starts(self, key: str) -> tuple[WriterStart, ...]:
        return self.image(key).starts()

    def check_settings(self, settings: StreamSettings) -> None:
        """Raise ConfigError unless ``settings`` write the same arrays, in the same version, as planned."""
        keys = sorted(a.output_key for a in settings.arrays)
        if keys != sorted(self.images) or settings.version_enum is not self.version:
            raise ConfigError(
                f"the append plan of {self.store_url} is for arrays {sorted(self.images)} (Zarr v{int(self.version)}). "
                f"Got arrays {keys} (Zarr v{int(settings.version_enum)}) instead."
            )


def plan_append(store: Store, settings: StreamSettings) -> AppendPlan:
    """Check ``store`` against ``settings`` and plan where each image continues; ConfigError/StorageError."""
    version = settings.version_enum
    root = store.get(metadata.V3_NODE if version is ZarrVersion.V3 else metadata.V2_GROUP)
    if root is None:
        raise ConfigError(
            f"store {store.url} holds no Zarr v{int(version)} group: there is nothing to append to (a run can be "
            "resumed only into the store it wrote)."
        )
    images = {a.output_key: _plan_image(store, version, a) for a in settings.arrays}
    return AppendPlan(store.url, version, images)


def _plan_image(store: Store, version: ZarrVersion, array: ArraySettings) -> ImageAppend:
    key = array.output_key
    dims = array.dimensions
    if array.method is not None and dims[0].kind is DimensionType.SPACE:
        raise ConfigError(
            f"array {key!r}: resuming a multiscale array whose dimension 0 ({dims[0].name!r}) is of type space "
            "(downsampled) is not supported; only pyramids over time, channel or other dimension 0 can be resumed."
        )
    planned = plan_image_levels(array, level0_layout(array, version))
    codec = ChunkCodec(array.compression, array.dtype)
    names = tuple(d.name for d in dims)
    claimed = tuple(
        _claimed_outer(store, version, metadata.join(key, p.level.path), p.layout, array, codec, names) for p in planned
    )
    row = math.lcm(*(p.layout.row_extent for p in planned))
    level0 = planned[0].layout
    at_outer = -(-max(claimed) // row) * row
    if not level0.appendable and at_outer >= level0.shape[0]:
        raise ConfigError(
            f"array {key!r} has a fixed dimension 0 of {level0.shape[0]} and claims {claimed[0]}: no row of "
            f"storage objects is left to resume into (the next starts at {at_outer})."
        )
    table = _first_extent(store, metadata.join(key, TABLE_ARRAY, _array_node(version)))
    return ImageAppend(key, claimed, at_outer, level0.frames_per_outer, table)


def _claimed_outer(
    store: Store,
    version: ZarrVersion,
    path: str,
    layout: ArrayLayout,
    array: ArraySettings,
    codec: ChunkCodec,
    names: Sequence[str],
) -> int:
    """The dimension-0 size the array at ``path`` claims, after checking its metadata matches the settings."""
    doc_key = metadata.join(path, _array_node(version))
    found = _read_json(store, doc_key)
    if found is None:
        raise ConfigError(f"store {store.url} has no array at {path!r} (no {doc_key}): the settings do not match it.")
    shape = found.get("shape")
    if not isinstance(shape, list) or len(shape) != layout.ndim or not all(isinstance(s, int) for s in shape):
        raise ConfigError(f"array {path!r}: shape is {shape!r} in the store; expected {layout.ndim} integers.")
    _, expected_doc = metadata.array_document(version, path, shape, layout, array.dtype, codec, names)
    expected = json.loads(expected_doc)
    rest = sorted((set(expected) | set(found)) - set(_FIRST_FIELDS))
    for name in (*_FIRST_FIELDS, *rest):
        if name in _IGNORED_FIELDS:
            continue
        found_value = normal_v2_compressor(found.get(name)) if name == "compressor" else found.get(name)
        if found_value != expected.get(name):
            raise ConfigError(
                f"array {path!r}: {name} is {found.get(name)!r} in the store; the settings give "
                f"{expected.get(name)!r}. A resumed run must use the settings the store was written with."
            )
    expected_shape = list(layout.shape_with_outer(shape[0]))
    if shape != expected_shape:
        raise ConfigError(
            f"array {path!r}: shape is {shape} in the store; the settings give {expected_shape} (dimension 0 "
            f"{'unbounded' if layout.appendable else f'fixed at {layout.shape[0]}'}). A resumed run must use the "
            "same dimensions."
        )
    return int(shape[0])


def resume_record(
    image: ImageAppend, *, run_id: str, resumes: str, interrupted_at: float | None, resumed_at: float
) -> JSONDict:
    """One ``acqd.resumes`` entry (JSON)."""
    return {
        "run_id": run_id,
        "resumes": resumes,
        "at_index": image.at_index,
        "claimed_before": image.claimed_before,
        "padding_frames": image.padding_frames,
        "table_rows_before": image.table_rows,
        "interrupted_at": interrupted_at,
        "resumed_at": resumed_at,
    }


def record_resume(store: Store, version: ZarrVersion, key: str, record: Mapping[str, Any]) -> None:
    """Append ``record`` to the image group's ``acqd.resumes`` attribute, keeping every other attribute."""
    if version is ZarrVersion.V3:
        doc_key = metadata.join(key, metadata.V3_NODE)
        doc = _read_json(store, doc_key)
        if doc is None or not isinstance(doc.get("attributes", {}), dict):
            raise StorageError(f"cannot record the resume in {store.url}: {doc_key} is missing or has no attributes.")
        attributes = doc.setdefault("attributes", {})
    else:
        doc_key = metadata.join(key, metadata.V2_ATTRS)
        doc = _read_json(store, doc_key) or {}
        attributes = doc
    ours = attributes.setdefault(ACQD_ATTRIBUTE, {})
    if not isinstance(ours, dict) or not isinstance(ours.setdefault(RESUMES, []), list):
        raise StorageError(f"cannot record the resume in {store.url}: {doc_key} has an unexpected 'acqd' attribute.")
    ours[RESUMES].append(dict(record))
    store.put(doc_key, metadata.encode(doc))


def _array_node(version: ZarrVersion) -> str:
    return metadata.V3_NODE if version is ZarrVersion.V3 else metadata.V2_ARRAY


def _read_json(store: Store, key: str) -> dict[str, Any] | None:
    data = store.get(key)
    if data is None:
        return None
    try:
        doc = json.loads(data)
    except ValueError as exc:
        raise StorageError(f"{key} in {store.url} is not JSON: {exc}") from exc
    if not isinstance(doc, dict):
        raise StorageError(f"{key} in {store.url} is not a JSON object.")
    return doc


def _first_extent(store: Store, key: str) -> int:
    doc = _read_json(store, key)
    shape = None if doc is None else doc.get("shape")
    if isinstance(shape, list) and shape and isinstance(shape[0], int):
        return shape[0]
    return 0
