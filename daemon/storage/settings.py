"""The settings of a stream, shaped like acquire-zarr's Python API: what to write, where, and how.

:class:`StreamSettings` holds :class:`ArraySettings`, each with its :class:`Dimension` list (outermost first) and
optional :class:`CompressionSettings`. Every value is a frozen, slotted dataclass validated when it is built, so an
invalid setting fails at construction with a message naming the field, the value and what is accepted.

Design notes:
- Enum fields accept the enum or its string value (``"space"``, ``"blosc-lz4"``, ``"byte"``); ``data_type``
  accepts a :class:`DataType`, a numpy dtype or its name. ``__post_init__`` normalises them to the enum, so code
  reading a validated setting always sees one type.
- Rules that involve several arrays or the Zarr version live in :class:`StreamSettings` (sharding is refused with
  version 2; output keys must not nest); rules of one array live in :class:`ArraySettings`.
- Chunks larger than a fixed dimension are legal here: :mod:`daemon.storage.layout` clamps them (and says so).
- ``downsampling_method`` (None: no pyramid) and ``max_levels`` shape the multiscale pyramid
  (:mod:`daemon.storage.multiscale`). ``max_levels`` counts every level, level 0 included (None: no cap), as
  :func:`daemon.storage.pyramid.plan_levels` does; acquire-zarr's counts only downsampled levels, so 0 is refused.
"""

from __future__ import annotations

import enum
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np

from daemon.errors import ConfigError
from daemon.storage.s3_settings import S3Settings
from daemon.storage.sink import parse_key

JSON = Any  # a JSON-serialisable value (checked with json.dumps)

ZSTD_MIN_LEVEL = -131072  # ZSTD_minCLevel()
ZSTD_MAX_LEVEL = 22


class DimensionType(str, enum.Enum):
    SPACE = "space"
    CHANNEL = "channel"
    TIME = "time"
    OTHER = "other"


class CompressionCodec(str, enum.Enum):
    BLOSC_LZ4 = "blosc-lz4"
    BLOSC_ZSTD = "blosc-zstd"
    BLOSC_BLOSCLZ = "blosc-blosclz"
    BLOSC_ZLIB = "blosc-zlib"
    ZSTD = "zstd"

    @property
    def is_blosc(self) -> bool:
        return self.value.startswith("blosc-")


class Shuffle(str, enum.Enum):
    NONE = "none"
    BYTE = "byte"
    BIT = "bit"


class DataType(str, enum.Enum):
    UINT8 = "uint8"
    UINT16 = "uint16"
    UINT32 = "uint32"
    UINT64 = "uint64"
    INT8 = "int8"
    INT16 = "int16"
    INT32 = "int32"
    INT64 = "int64"
    FLOAT32 = "float32"
    FLOAT64 = "float64"

    @property
    def dtype(self) -> np.dtype[Any]:
        """The little-endian numpy dtype (what is stored)."""
        return np.dtype(self.value).newbyteorder("<")


class DownsamplingMethod(str, enum.Enum):
    MEAN = "mean"
    DECIMATE = "decimate"
    MIN = "min"
    MAX = "max"


class ZarrVersion(enum.IntEnum):
    V2 = 2
    V3 = 3


_E = TypeVar("_E", bound=enum.Enum)


def parse_enum(kind: type[_E], value: object, name: str) -> _E:
    """``value`` as a member of ``kind`` (given the member or its value), else a ConfigError naming ``name``."""
    if isinstance(value, kind):
        return value
    try:
        return kind(value.lower() if isinstance(value, str) else value)
    except ValueError:
        accepted = ", ".join(repr(m.value) for m in kind)
        raise ConfigError(f"{name} must be one of {accepted}. Got {value!r} instead.") from None


def parse_data_type(value: object) -> DataType:
    """A DataType from the enum, a numpy dtype or its name (``"uint16"``, ``"<u2"``, ``np.uint16``)."""
    if isinstance(value, DataType):
        return value
    accepted = ", ".join(repr(m.value) for m in DataType)
    try:
        dtype = np.dtype(value)  # type: ignore[call-overload]
    except TypeError:
        raise ConfigError(f"data_type must be one of {accepted} (or a numpy dtype). Got {value!r} instead.") from None
    if dtype.byteorder == ">":
        raise ConfigError(f"data_type must be little-endian or native. Got {value!r} instead.")
    try:
        return DataType(dtype.name)
    except ValueError:
        raise ConfigError(f"data_type must be one of {accepted} (or a numpy dtype). Got {value!r} instead.") from None


def _parse_int(value: object, name: str, minimum: int, maximum: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise ConfigError(f"{name} must be an integer. Got {value!r} instead.")
    number = int(value)
    if number < minimum or (maximum is not None and number > maximum):
        bounds = f">= {minimum}" if maximum is None else f"between {minimum} and {maximum}"
        raise ConfigError(f"{name} must be {bounds}. Got {number} instead.")
    return number


@dataclass(frozen=True, slots=True)
class Dimension:
    """One axis of an array. ``array_size_px`` 0 makes the (first) dimension the unbounded append dimension."""

    name: str
    type: DimensionType | str
    array_size_px: int
    chunk_size_px: int
    shard_size_chunks: int | None = None
    unit: str | None = None
    scale: float = 1.0

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ConfigError(f"name of a dimension must be a non-empty string. Got {self.name!r} instead.")
        where = f"of dimension {self.name!r}"
        object.__setattr__(self, "type", parse_enum(DimensionType, self.type, f"type {where}"))
        _parse_int(self.array_size_px, f"array_size_px {where}", 0)
        _parse_int(self.chunk_size_px, f"chunk_size_px {where}", 1)
        if self.shard_size_chunks is not None:
            _parse_int(self.shard_size_chunks, f"shard_size_chunks {where}", 1)
        if self.unit is not None and (not isinstance(self.unit, str) or not self.unit):
            raise ConfigError(f"unit {where} must be a non-empty string or None. Got {self.unit!r} instead.")
        if isinstance(self.scale, bool) or not isinstance(self.scale, int | float) or not self.scale > 0:
            raise ConfigError(f"scale {where} must be a number > 0. Got {self.scale!r} instead.")

    @property
    def kind(self) -> DimensionType:
        """The validated type (acquire-zarr calls this field ``kind``)."""
        return DimensionType(self.type)

    @property
    def is_append(self) -> bool:
        return self.array_size_px == 0


@dataclass(frozen=True, slots=True)
class CompressionSettings:
    """Blosc1 (``blosc-*``, level 0-9, shuffle) or plain Zstd (its own levels, no shuffle).

    ``shuffle=None`` means the codec's default: ``byte`` for Blosc, ``none`` for Zstd.
    """

    codec: CompressionCodec | str = CompressionCodec.BLOSC_LZ4
    level: int = 1
    shuffle: Shuffle | str | int | None = None

    def __post_init__(self) -> None:
        codec = parse_enum(CompressionCodec, self.codec, "compression.codec")
        object.__setattr__(self, "codec", codec)
        if codec.is_blosc:
            _parse_int(self.level, f"compression.level (codec {codec.value!r})", 0, 9)
        else:
            _parse_int(self.level, f"compression.level (codec {codec.value!r})", ZSTD_MIN_LEVEL, ZSTD_MAX_LEVEL)
        shuffle = self.shuffle
        if shuffle is None:
            shuffle = Shuffle.BYTE if codec.is_blosc else Shuffle.NONE
        elif isinstance(shuffle, int) and not isinstance(shuffle, bool) and shuffle in (0, 1, 2):
            shuffle = list(Shuffle)[shuffle]  # acquire-zarr's 0/1/2
        shuffle = parse_enum(Shuffle, shuffle, "compression.shuffle")
        if not codec.is_blosc and shuffle is not Shuffle.NONE:
            raise ConfigError(
                f"compression.shuffle must be 'none' with codec {codec.value!r} (only Blosc shuffles). "
                f"Got {shuffle.value!r} instead."
            )
        object.__setattr__(self, "shuffle", shuffle)

    @property
    def codec_enum(self) -> CompressionCodec:
        return CompressionCodec(self.codec)

    @property
    def shuffle_enum(self) -> Shuffle:
        return Shuffle(self.shuffle)


@dataclass(frozen=True, slots=True)
class ArraySettings:
    """One array: an OME-NGFF image at ``output_key`` (the store root when empty) with its levels ``0``, ``1``..."""

    output_key: str = ""
    data_type: DataType | str | np.dtype[Any] | type = DataType.UINT16
    dimensions: Sequence[Dimension] = ()
    compression: CompressionSettings | None = None
    downsampling_method: DownsamplingMethod | str | None = None
    max_levels: int | None = None

    def __post_init__(self) -> None:
        if self.output_key != "":
            try:
                parse_key(self.output_key)
            except ConfigError as exc:
                raise ConfigError(f"output_key is invalid: {exc}") from None
        object.__setattr__(self, "data_type", parse_data_type(self.data_type))
        object.__setattr__(self, "dimensions", tuple(self.dimensions))
        _check_dimensions(self.dimensions)
        if self.compression is not None and not isinstance(self.compression, CompressionSettings):
            raise ConfigError(f"compression must be CompressionSettings or None. Got {self.compression!r} instead.")
        if self.downsampling_method is not None:
            method = parse_enum(DownsamplingMethod, self.downsampling_method, "downsampling_method")
            object.__setattr__(self, "downsampling_method", method)
        object.__setattr__(self, "max_levels", parse_max_levels(self.max_levels, self.downsampling_method))

    @property
    def dtype(self) -> np.dtype[Any]:
        return DataType(self.data_type).dtype

    @property
    def sharded(self) -> bool:
        return any(d.shard_size_chunks is not None for d in self.dimensions)

    @property
    def method(self) -> DownsamplingMethod | None:
        """The validated downsampling method (None: no pyramid)."""
        return None if self.downsampling_method is None else DownsamplingMethod(self.downsampling_method)


def parse_max_levels(max_levels: object, method: object) -> int | None:
    """``max_levels`` counts every level, level 0 included (None: no cap); it needs a downsampling method."""
    if max_levels is None:
        return None
    if isinstance(max_levels, bool) or not isinstance(max_levels, int | np.integer) or max_levels < 1:
        raise ConfigError(
            "max_levels must be None (no cap) or an integer >= 1: it counts every level, level 0 included "
            "(1: level 0 alone; unlike acquire-zarr, whose max_levels counts only the downsampled levels and "
            f"uses 0 for no cap). Got {max_levels!r} instead."
        )
    if method is None:
        raise ConfigError(
            "max_levels needs a downsampling_method ('mean', 'decimate', 'min' or 'max'): without one there is "
            f"no pyramid. Got max_levels {max_levels} and downsampling_method None."
        )
    return int(max_levels)


def _check_dimensions(dimensions: Sequence[Dimension]) -> None:
    if len(dimensions) < 3:
        raise ConfigError(
            f"dimensions must list at least 3 dimensions (outermost first, the last two the frame's y and x). "
            f"Got {len(dimensions)} instead."
        )
    names: set[str] = set()
    for index, dim in enumerate(dimensions):
        if not isinstance(dim, Dimension):
            raise ConfigError(f"dimensions[{index}] must be a Dimension. Got {dim!r} instead.")
        if dim.name in names:
            raise ConfigError(f"dimensions must have unique names. Got {dim.name!r} twice.")
        names.add(dim.name)
        if index > 0 and dim.is_append:
            raise ConfigError(
                f"array_size_px of dimension {dim.name!r} must be >= 1: only the first dimension may be 0 "
                "(the unbounded append dimension). Got 0 instead."
            )
    for dim in dimensions[-2:]:
        if dim.kind is not DimensionType.SPACE:
            raise ConfigError(
                f"type of dimension {dim.name!r} must be 'space': the last two dimensions are the frame's y and x. "
                f"Got {dim.kind.value!r} instead."
            )


_RESERVED_ATTRIBUTES = ("ome", "multiscales")


def parse_custom_metadata(value: Mapping[str, JSON] | str | None) -> dict[str, JSON] | None:
    """A JSON object (mapping or JSON text) for the root group's attributes; reserved OME keys are refused."""
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"custom_metadata must be a JSON object. Got invalid JSON: {exc}.") from None
    if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
        raise ConfigError(f"custom_metadata must be a JSON object with string keys. Got {value!r} instead.")
    try:
        parsed: dict[str, JSON] = json.loads(json.dumps(dict(value), allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"custom_metadata must be JSON-serialisable: {exc}.") from None
    clash = sorted(set(parsed) & set(_RESERVED_ATTRIBUTES))
    if clash:
        raise ConfigError(
            f"custom_metadata must not use the keys {list(_RESERVED_ATTRIBUTES)} (OME metadata). Got {clash} instead."
        )
    return parsed


@dataclass(frozen=True, slots=True)
class StreamSettings:
    """A store (local path or ``s3://``) and the arrays to stream into it."""

    store_path: str
    version: ZarrVersion | int = ZarrVersion.V3
    overwrite: bool = False
    arrays: Sequence[ArraySettings] = ()
    max_threads: int = 0  # 0: one per CPU core
    s3: S3Settings | None = None
    custom_metadata: Mapping[str, JSON] | str | None = field(default=None)

    def __post_init__(self) -> None:
        if not isinstance(self.store_path, str) or not self.store_path:
            raise ConfigError(f"store_path must be a non-empty string. Got {self.store_path!r} instead.")
        object.__setattr__(self, "version", parse_enum(ZarrVersion, self.version, "version"))
        _parse_int(self.max_threads, "max_threads", 0, 256)
        if self.s3 is not None and not isinstance(self.s3, S3Settings):
            raise ConfigError(f"s3 must be S3Settings or None. Got {self.s3!r} instead.")
        object.__setattr__(self, "arrays", tuple(self.arrays))
        if not self.arrays:
            raise ConfigError("arrays must list at least one ArraySettings. Got none.")
        for index, array in enumerate(self.arrays):
            if not isinstance(array, ArraySettings):
                raise ConfigError(f"arrays[{index}] must be ArraySettings. Got {array!r} instead.")
        _check_output_keys([a.output_key for a in self.arrays])
        if self.version_enum is ZarrVersion.V2:
            _refuse_v2_shards(self.arrays)
        object.__setattr__(self, "custom_metadata", parse_custom_metadata(self.custom_metadata))

    @property
    def version_enum(self) -> ZarrVersion:
        return ZarrVersion(self.version)

    @property
    def threads(self) -> int:
        """``max_threads``, with 0 resolved to the number of CPU cores."""
        return self.max_threads or os.cpu_count() or 1

    @property
    def custom_attributes(self) -> dict[str, JSON]:
        """The validated custom metadata (a copy; empty when None)."""
        parsed = parse_custom_metadata(self.custom_metadata)
        return parsed if parsed is not None else {}

    def array(self, key: str) -> ArraySettings:
        for array in self.arrays:
            if array.output_key == key:
                return array
        raise KeyError(key)


def _check_output_keys(keys: Sequence[str]) -> None:
    seen: set[str] = set()
    for key in keys:
        if key in seen:
            raise ConfigError(f"output_key must be unique across arrays. Got {key!r} twice.")
        seen.add(key)
    for key in keys:
        for other in keys:
            if other != key and (key == "" or other.startswith(key + "/")):
                raise ConfigError(
                    f"output_key {other!r} would nest inside the image at {key!r}: images must not contain "
                    "each other (use sibling keys such as 'sample/a' and 'sample/b')."
                )


def _refuse_v2_shards(arrays: Sequence[ArraySettings]) -> None:
    for array in arrays:
        for dim in array.dimensions:
            if dim.shard_size_chunks not in (None, 1):
                raise ConfigError(
                    f"shard_size_chunks of dimension {dim.name!r} must be None or 1 with Zarr version 2 "
                    f"(sharding needs version 3). Got {dim.shard_size_chunks} instead."
                )
