"""The multiscale oracle: a whole-array numpy pyramid built from the frames sent, and what a stream should store.

The reference never streams: it takes the whole level-0 array (the frames sent, in C order, and a mask of which
frames exist), pads every halved axis to an even size with absent samples, folds each pair of samples into a block
axis and reduces the blocks. Integer means are exact (Python ints, rounded half to even); float means are summed
in float64. Level ``n`` is built from level ``n - 1``; a level's frame exists when its block had any sample.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import zarr

from daemon.storage import ArraySettings, CompressionSettings, StreamSettings
from tests.storage.support import dims, expected_array, final_shape, random_frames, read, write

Array = npt.NDArray[Any]
Spec = Sequence[tuple[str, str, int, int]]


@dataclass(frozen=True)
class RefLevel:
    values: Array  # the whole level, absent frames at the fill value 0
    present: npt.NDArray[np.bool_]  # per frame (the non-spatial dims)


def pyramid_settings(
    path: Any,
    spec: Spec,
    method: str | None,
    *,
    version: int = 3,
    shards: Sequence[int] | None = None,
    dtype: str = "uint16",
    max_levels: int | None = None,
    compression: CompressionSettings | None = None,
    key: str = "",
) -> StreamSettings:
    """One array with a pyramid (``method``), sharded when ``shards`` is given (Zarr v3 only)."""
    array = ArraySettings(
        output_key=key,
        data_type=dtype,
        dimensions=dims(spec, shards),
        compression=compression,
        downsampling_method=method,
        max_levels=max_levels,
    )
    return StreamSettings(store_path=str(path), version=version, arrays=[array], max_threads=2)


def halved_flags(spec: Spec) -> tuple[bool, ...]:
    return tuple(kind == "space" for _, kind, _, _ in spec)


def expected_level_count(spec: Spec, max_levels: int | None) -> int:
    """Halve until every bounded space dimension fits in one chunk, or ``max_levels`` (level 0 included)."""
    sizes = [size for _, _, size, _ in spec]
    chunks = [min(chunk, size) if size else chunk for _, _, size, chunk in spec]
    flags = halved_flags(spec)
    count = 1
    while max_levels is None or count < max_levels:
        if not any(f and s > c for s, c, f in zip(sizes, chunks, flags, strict=True)):  # s 0: unbounded
            break
        sizes = [(s + 1) // 2 if f else s for s, f in zip(sizes, flags, strict=True)]
        count += 1
    return count


def _blocks(a: Array, flags: Sequence[bool], fill: Any) -> Array:
    """``a`` with each flagged axis padded to even (with ``fill``) and folded into a trailing block axis."""
    pad = [(0, size % 2 if flag else 0) for size, flag in zip(a.shape, flags, strict=True)]
    a = np.pad(a, pad, constant_values=fill)
    shape: list[int] = []
    pair_axes: list[int] = []
    for size, flag in zip(a.shape, flags, strict=True):
        if flag:
            shape += [size // 2, 2]
            pair_axes.append(len(shape) - 1)
        else:
            shape.append(size)
    if not pair_axes:
        return a[..., np.newaxis]
    folded = np.moveaxis(a.reshape(shape), pair_axes, list(range(-len(pair_axes), 0)))
    return folded.reshape(*folded.shape[: -len(pair_axes)], -1)


def _round_half_even(total: int, count: int) -> int:
    if count == 0:
        return 0
    quotient, remainder = divmod(total, count)
    if 2 * remainder > count or (2 * remainder == count and quotient % 2):
        quotient += 1
    return int(quotient)


_ROUND = np.frompyfunc(_round_half_even, 2, 1)


def _reduce(values: Array, mask: Array, method: str) -> Array:
    """Reduce the block axis (the last) over the samples ``mask`` marks."""
    dtype = values.dtype
    if method == "decimate":
        return values[..., 0]  # the lowest corner exists whenever any sample of its block does
    if method in ("min", "max"):
        info = np.finfo(dtype) if dtype.kind == "f" else np.iinfo(dtype)
        neutral = info.max if method == "min" else info.min
        masked = np.where(mask, values, dtype.type(neutral))
        return masked.min(axis=-1) if method == "min" else masked.max(axis=-1)
    count = mask.sum(axis=-1)
    if dtype.kind == "f":
        total = np.where(mask, values.astype(np.float64), 0.0).sum(axis=-1)
        return (total / np.maximum(count, 1)).astype(dtype)
    total = np.where(mask, values.astype(object), 0).sum(axis=-1)
    return np.asarray(_ROUND(total, count.astype(object)), dtype=object).astype(dtype)


def next_level(level: RefLevel, flags: Sequence[bool], method: str) -> RefLevel:
    values = level.values
    mask = np.broadcast_to(level.present[..., np.newaxis, np.newaxis], values.shape)
    reduced = _reduce(_blocks(values, flags, 0), _blocks(mask, flags, False), method)
    present = _blocks(level.present, flags[:-2], False).any(axis=-1)
    reduced[~present] = 0
    return RefLevel(reduced, present)


def reference_pyramid(frames: Array, spec: Spec, method: str, n_levels: int) -> list[RefLevel]:
    """Every level of the pyramid of ``frames`` (sent in C order into an array described by ``spec``)."""
    shape = final_shape(spec, len(frames))
    present = np.zeros(shape[:-2], dtype=bool)
    present.reshape(-1)[: len(frames)] = True
    levels = [RefLevel(expected_array(frames, shape), present)]
    flags = halved_flags(spec)
    for _ in range(1, n_levels):
        levels.append(next_level(levels[-1], flags, method))
    return levels


def assert_level_equal(got: Array, want: Array, method: str, where: str) -> None:
    """Value for value; a float mean may differ in its last bits (the engine sums in another order)."""
    assert got.shape == want.shape, f"{where}: shape {got.shape} != {want.shape}"
    assert got.dtype == want.dtype, f"{where}: dtype {got.dtype} != {want.dtype}"
    if method == "mean" and want.dtype.kind == "f":
        rtol = 1e-6 if want.dtype == np.float32 else 1e-12
        np.testing.assert_allclose(got, want, rtol=rtol, atol=1e-9, err_msg=where)
        return
    np.testing.assert_array_equal(got, want, err_msg=where)


@dataclass(frozen=True)
class Case:
    """A layout to stream: its dimensions, shard sizes (Zarr v3 sharded runs) and how many frames to send."""

    name: str
    spec: Spec
    shards: Sequence[int]
    frames: int
    batch: int = 1

    def __str__(self) -> str:
        return self.name


CASES = [
    Case("tyx", [("t", "time", 0, 2), ("y", "space", 13, 4), ("x", "space", 11, 3)], [2, 2, 2], 7),
    Case("zyx-fixed-odd", [("z", "space", 7, 2), ("y", "space", 9, 4), ("x", "space", 5, 2)], [2, 1, 2], 7, 7),
    Case("zyx-append-space", [("z", "space", 0, 2), ("y", "space", 9, 4), ("x", "space", 10, 4)], [1, 2, 1], 7, 3),
    Case(
        "tzyx-ragged-mid-stack",
        [("t", "time", 0, 1), ("z", "space", 5, 2), ("y", "space", 10, 4), ("x", "space", 7, 4)],
        [2, 2, 1, 2],
        13,
    ),
    Case(
        "czyx-fixed-short",
        [("c", "channel", 3, 1), ("z", "space", 4, 3), ("y", "space", 9, 8), ("x", "space", 6, 4)],
        [1, 1, 2, 1],
        11,
        4,
    ),
    Case(
        "tczyx",
        [("t", "time", 0, 2), ("c", "channel", 2, 1), ("z", "space", 3, 2), ("y", "space", 9, 4), ("x", "space", 8, 4)],
        [1, 2, 2, 1, 2],
        16,
    ),
    Case(
        "zcyx-append-space-outer",
        [("z", "space", 0, 1), ("c", "channel", 2, 1), ("y", "space", 6, 4), ("x", "space", 7, 4)],
        [2, 1, 1, 2],
        9,
        2,
    ),
]


def stream_and_compare(
    path: Path,
    case: Case,
    method: str,
    version: int,
    sharded: bool,
    dtype: str,
    read_level: Callable[[Path, str], Array] = read,
) -> int:
    """Stream ``case``'s frames, then compare every level, as ``read_level(store, array path)`` reads it (zarr-python
    by default), with the reference; the number of levels."""
    height, width = case.spec[-2][2], case.spec[-1][2]
    frames = random_frames(case.frames, height, width, dtype, seed=case.frames)
    compression = CompressionSettings("blosc-zstd", 1) if version == 3 else CompressionSettings("zstd", 1)
    s = pyramid_settings(
        path,
        case.spec,
        method,
        version=version,
        shards=case.shards if sharded else None,
        dtype=dtype,
        compression=compression,
        key="img",
    )
    write(s, frames, batch=case.batch)
    n_levels = expected_level_count(case.spec, None)
    group = zarr.open_group(str(path), path="img", mode="r")
    assert sorted(group.array_keys()) == [str(n) for n in range(n_levels)]
    for n, want in enumerate(reference_pyramid(frames, case.spec, method, n_levels)):
        assert_level_equal(read_level(path, f"img/{n}"), want.values, method, f"{case} {method} level {n}")
    return n_levels
