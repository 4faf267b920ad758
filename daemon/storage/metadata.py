"""Metadata documents as pure dicts: Zarr v3 ``zarr.json``, Zarr v2 ``.zarray``/``.zgroup``/``.zattrs``, OME-NGFF.

Design notes:
- OME-NGFF 0.5 goes with Zarr v3 (attributes under ``"ome"`` with ``"version": "0.5"``), 0.4 with Zarr v2
  (``.zattrs`` ``multiscales`` with ``"version": "0.4"``). An image is a group whose arrays ``0``, ``1``... are its
  resolution levels; :class:`Level` carries each level's path and per-dimension scale factor.
- OME axes: ``space``/``time``/``channel`` keep their type; ``other`` is written without a type (the spec's
  "null / custom" axis). :func:`ome_problems` applies the spec's rules (2-5 axes; 2 or 3 space axes, last;
  at most one time axis, first; at most one channel-or-custom axis); a layout breaking them is still written as
  Zarr but without OME metadata (the caller logs a warning).
- Units and names are written as given; OME recommends UDUNITS-2 names (``micrometer``, ``second``).
- A pyramid records its method as the multiscale's ``type`` (``mean``, ``decimate``, ``min``, ``max``) and in its
  ``metadata`` (method, a description, the halved axes), the two fields OME-NGFF 0.4/0.5 reserve for it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from daemon.storage.codec import ChunkCodec, JSONDict
from daemon.storage.layout import ArrayLayout
from daemon.storage.settings import Dimension, DimensionType, ZarrVersion

V3_NODE = "zarr.json"
V2_ARRAY = ".zarray"
V2_GROUP = ".zgroup"
V2_ATTRS = ".zattrs"
SHARD_INDEX_CODECS: list[JSONDict] = [{"name": "bytes", "configuration": {"endian": "little"}}, {"name": "crc32c"}]


@dataclass(frozen=True, slots=True)
class Level:
    """One resolution level of an image: its array path inside the image group and its scale factor per dim."""

    path: str
    factors: tuple[float, ...]


def join(*parts: str) -> str:
    """A store key from parts, skipping empty ones (the root is ``""``)."""
    return "/".join(p for p in parts if p)


def encode(doc: Mapping[str, Any]) -> bytes:
    return json.dumps(doc, indent=2, allow_nan=False).encode() + b"\n"


def fill_value(dtype: np.dtype[Any]) -> int | float:
    return 0.0 if dtype.kind == "f" else 0


# -- Zarr v3 ------------------------------------------------------------------------------------------------------


def v3_group(attributes: Mapping[str, Any]) -> JSONDict:
    return {"zarr_format": 3, "node_type": "group", "attributes": dict(attributes)}


def v3_array(
    shape: Sequence[int], layout: ArrayLayout, dtype: np.dtype[Any], codec: ChunkCodec, names: Sequence[str]
) -> JSONDict:
    inner = codec.v3_codecs()
    if layout.sharded:
        codecs: list[JSONDict] = [
            {
                "name": "sharding_indexed",
                "configuration": {
                    "chunk_shape": list(layout.chunks),
                    "codecs": inner,
                    "index_codecs": SHARD_INDEX_CODECS,
                    "index_location": "end",
                },
            }
        ]
        grid = list(layout.object_shape)
    else:
        codecs = inner
        grid = list(layout.chunks)
    return {
        "zarr_format": 3,
        "node_type": "array",
        "shape": list(shape),
        "data_type": dtype.name,
        "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": grid}},
        "chunk_key_encoding": {"name": "default", "configuration": {"separator": "/"}},
        "fill_value": fill_value(dtype),
        "codecs": codecs,
        "attributes": {},
        "dimension_names": list(names),
        "storage_transformers": [],
    }


# -- Zarr v2 ------------------------------------------------------------------------------------------------------


def v2_group() -> JSONDict:
    return {"zarr_format": 2}


def v2_array(shape: Sequence[int], layout: ArrayLayout, dtype: np.dtype[Any], codec: ChunkCodec) -> JSONDict:
    return {
        "zarr_format": 2,
        "shape": list(shape),
        "chunks": list(layout.chunks),
        "dtype": dtype.str,
        "compressor": codec.v2_compressor(),
        "fill_value": fill_value(dtype),
        "order": "C",
        "filters": None,
        "dimension_separator": "/",
    }


# -- documents per node -------------------------------------------------------------------------------------------


def group_documents(version: ZarrVersion, path: str, attributes: Mapping[str, Any]) -> list[tuple[str, bytes]]:
    """The (key, bytes) documents of a group at ``path``."""
    if version is ZarrVersion.V3:
        return [(join(path, V3_NODE), encode(v3_group(attributes)))]
    docs = [(join(path, V2_GROUP), encode(v2_group()))]
    if attributes:
        docs.append((join(path, V2_ATTRS), encode(dict(attributes))))
    return docs


def array_document(
    version: ZarrVersion,
    path: str,
    shape: Sequence[int],
    layout: ArrayLayout,
    dtype: np.dtype[Any],
    codec: ChunkCodec,
    names: Sequence[str],
) -> tuple[str, bytes]:
    """The (key, bytes) document of an array at ``path`` with its current ``shape``."""
    if version is ZarrVersion.V3:
        return join(path, V3_NODE), encode(v3_array(shape, layout, dtype, codec, names))
    return join(path, V2_ARRAY), encode(v2_array(shape, layout, dtype, codec))


def chunk_key(version: ZarrVersion, array_path: str, index: Sequence[int]) -> str:
    """The key of the chunk (or shard) at grid ``index``: ``c/i/j/k`` (v3 default) or ``i/j/k`` (v2)."""
    coords = "/".join(str(i) for i in index)
    return join(array_path, "c", coords) if version is ZarrVersion.V3 else join(array_path, coords)


# -- OME-NGFF -----------------------------------------------------------------------------------------------------


def ome_axis(dim: Dimension) -> JSONDict:
    axis: JSONDict = {"name": dim.name}
    if dim.kind is not DimensionType.OTHER:
        axis["type"] = dim.kind.value
    if dim.unit is not None:
        axis["unit"] = dim.unit
    return axis


def ome_problems(dims: Sequence[Dimension]) -> list[str]:
    """Why ``dims`` cannot be an OME-NGFF 0.4/0.5 image (empty when it can)."""
    kinds = [d.kind for d in dims]
    problems: list[str] = []
    if not 2 <= len(kinds) <= 5:
        problems.append(f"OME-NGFF allows 2 to 5 axes, got {len(kinds)}")
    n_space = kinds.count(DimensionType.SPACE)
    if n_space not in (2, 3) or any(k is not DimensionType.SPACE for k in kinds[-n_space:]):
        problems.append("OME-NGFF needs 2 or 3 space axes, all last")
    if kinds.count(DimensionType.TIME) > 1 or (DimensionType.TIME in kinds and kinds[0] is not DimensionType.TIME):
        problems.append("OME-NGFF allows one time axis, first")
    if kinds.count(DimensionType.CHANNEL) + kinds.count(DimensionType.OTHER) > 1:
        problems.append("OME-NGFF allows one channel or custom ('other') axis")
    return problems


_METHOD_DESCRIPTIONS = {
    "mean": "the mean of its samples (integers rounded half to even)",
    "decimate": "its first sample (the lowest index on every axis)",
    "min": "the least of its samples",
    "max": "the greatest of its samples",
}


def ome_downsampling(method: str, dims: Sequence[Dimension], levels: Sequence[Level]) -> JSONDict:
    """The ``metadata`` of a multiscale: how each level was made from the one before it."""
    halved = [d.name for d, f in zip(dims, levels[-1].factors, strict=True) if f != 1] if len(levels) > 1 else []
    return {
        "method": method,
        "description": (
            "each level halves the axes in 'downsampled_axes' of the level before it: a sample reduces a block of "
            "2 samples per halved axis (fewer at an odd edge or where the acquisition ended) to "
            + _METHOD_DESCRIPTIONS[method]
        ),
        "downsampled_axes": halved,
    }


def ome_multiscale(
    dims: Sequence[Dimension], levels: Sequence[Level], name: str, method: str | None = None
) -> JSONDict:
    """One ``multiscales`` entry: axes from ``dims``, a scale transform per level, and the method (if any)."""
    datasets = [
        {
            "path": level.path,
            "coordinateTransformations": [
                {"type": "scale", "scale": [float(d.scale) * f for d, f in zip(dims, level.factors, strict=True)]}
            ],
        }
        for level in levels
    ]
    multiscale: JSONDict = {"name": name, "axes": [ome_axis(d) for d in dims], "datasets": datasets}
    if method is not None:
        multiscale["type"] = method
        multiscale["metadata"] = ome_downsampling(method, dims, levels)
    return multiscale


def ome_image_attributes(version: ZarrVersion, multiscale: JSONDict) -> JSONDict:
    """The image group's attributes: OME-NGFF 0.5 (Zarr v3) or 0.4 (Zarr v2)."""
    if version is ZarrVersion.V3:
        return {"ome": {"version": "0.5", "multiscales": [multiscale]}}
    return {"multiscales": [{"version": "0.4", **multiscale}]}
