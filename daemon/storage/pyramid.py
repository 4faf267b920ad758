"""Level planning for a multiscale pyramid: which levels exist, their shapes and scale factors (pure math).

Design notes:
- Shapes are listed outermost first; the last two axes are the frame's y and x and are always downsampled. The
  first axis may have size 0: the unbounded append axis, whose size is only known when the run ends.
- Each level halves every downsampled axis: ``size -> ceil(size / 2)`` (an odd size keeps its last, partial
  block). The unbounded axis stays 0 (unknown) at every level. Axes not downsampled (time, channel, other) keep
  their size. The scale factor of level ``n`` is ``2**n`` on downsampled axes, 1 elsewhere.
- Stop rule: a level ``n + 1`` is added while some *bounded* downsampled axis of level ``n`` is larger than its
  chunk size. The unbounded axis does not count: its size is unknown when the levels are planned.
- ``max_levels`` counts every level, level 0 included: ``max_levels=1`` means no pyramid, ``None`` no cap.
- :func:`max_open_blocks` is the memory a streaming reducer needs: the number of partial output frames it must hold
  between two input frames when frames arrive in C order (see ``daemon.storage.downsampler``).
"""

from __future__ import annotations

import math
import operator
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import SupportsIndex

from daemon.errors import ConfigError


@dataclass(frozen=True, slots=True)
class PyramidLevel:
    """One resolution level: its shape (0 = unbounded append axis) and its scale factor per axis."""

    shape: tuple[int, ...]
    scale: tuple[int, ...]


def _as_int(value: object, field: str) -> int:
    """An integer (Python or numpy); floats and bools are refused rather than truncated."""
    if isinstance(value, bool) or not isinstance(value, SupportsIndex):
        raise ConfigError(f"{field} must be an integer. Got {value!r} instead.")
    return operator.index(value)


def parse_shape(shape: Sequence[int]) -> tuple[int, ...]:
    """Validate an array shape: at least (y, x), sizes >= 1, except the first of 3+ axes may be 0 (unbounded)."""
    dims = tuple(_as_int(size, f"shape[{axis}]") for axis, size in enumerate(shape))
    if len(dims) < 2:
        raise ConfigError(f"shape must have at least 2 axes (y, x). Got {dims!r} instead.")
    for axis, size in enumerate(dims):
        lowest = 0 if axis == 0 and len(dims) > 2 else 1
        if size < lowest:
            raise ConfigError(
                f"shape[{axis}] must be >= {lowest} (only the first of 3 or more axes may be 0, unbounded). "
                f"Got {size} instead."
            )
    return dims


def parse_downsample_axes(shape: Sequence[int], downsample_axes: Collection[int]) -> tuple[bool, ...]:
    """Validate axis indices to downsample; return one flag per axis. The last two (y, x) are required."""
    ndim = len(shape)
    flags = [False] * ndim
    for value in downsample_axes:
        axis = _as_int(value, "downsample_axes entry")
        if not -ndim <= axis < ndim:
            raise ConfigError(f"downsample_axes must hold axis indices in [{-ndim}, {ndim - 1}]. Got {axis} instead.")
        flags[axis] = True
    if not (flags[-1] and flags[-2]):
        raise ConfigError(
            f"downsample_axes must include the frame axes y and x ({ndim - 2} and {ndim - 1}). "
            f"Got {sorted(downsample_axes)!r} instead."
        )
    return tuple(flags)


def halve(shape: Sequence[int], downsampled: Sequence[bool]) -> tuple[int, ...]:
    """The next level's shape: ``ceil(size / 2)`` on downsampled axes; 0 (unbounded) stays 0."""
    return tuple((size + 1) // 2 if flag else size for size, flag in zip(shape, downsampled, strict=True))


def level_shapes(shape: Sequence[int], downsample_axes: Collection[int], n_levels: int) -> tuple[PyramidLevel, ...]:
    """The first ``n_levels`` levels of a pyramid, level 0 being ``shape`` itself."""
    dims = parse_shape(shape)
    flags = parse_downsample_axes(dims, downsample_axes)
    n_levels = _as_int(n_levels, "n_levels")
    if n_levels < 1:
        raise ConfigError(f"n_levels must be an integer >= 1. Got {n_levels} instead.")
    levels = []
    current = dims
    for n in range(n_levels):
        levels.append(PyramidLevel(current, tuple(2**n if flag else 1 for flag in flags)))
        current = halve(current, flags)
    return tuple(levels)


def plan_levels(
    shape: Sequence[int],
    chunk_shape: Sequence[int],
    downsample_axes: Collection[int],
    max_levels: int | None = None,
) -> tuple[PyramidLevel, ...]:
    """Plan the levels: halve until every bounded downsampled axis fits in one chunk, or ``max_levels`` is reached.

    ``max_levels`` counts all levels including level 0 (``None``: no cap). Always returns at least level 0.
    """
    dims = parse_shape(shape)
    flags = parse_downsample_axes(dims, downsample_axes)
    chunks = tuple(_as_int(chunk, f"chunk_shape[{axis}]") for axis, chunk in enumerate(chunk_shape))
    if len(chunks) != len(dims):
        raise ConfigError(f"chunk_shape must have {len(dims)} entries, one per axis. Got {chunks!r} instead.")
    for axis, chunk in enumerate(chunks):
        if chunk < 1:
            raise ConfigError(f"chunk_shape[{axis}] must be >= 1. Got {chunk} instead.")
    cap = None if max_levels is None else _as_int(max_levels, "max_levels")
    if cap is not None and cap < 1:
        raise ConfigError(f"max_levels must be None or an integer >= 1 (levels including 0). Got {cap} instead.")
    n_levels = 1
    current = dims
    while cap is None or n_levels < cap:
        if not _exceeds_a_chunk(current, chunks, flags):
            break
        current = halve(current, flags)
        n_levels += 1
    return level_shapes(dims, [axis for axis, flag in enumerate(flags) if flag], n_levels)


def _exceeds_a_chunk(shape: Sequence[int], chunks: Sequence[int], downsampled: Sequence[bool]) -> bool:
    """Whether a bounded downsampled axis is larger than one chunk (the unbounded axis, size 0, never is)."""
    return any(flag and size > chunk for size, chunk, flag in zip(shape, chunks, downsampled, strict=True))


def max_open_blocks(shape: Sequence[int], downsampled: Sequence[bool]) -> int:
    """Partial output frames a streaming reducer of ``shape`` must hold between input frames (C-order arrival).

    An output frame is open from its first input frame (its lowest corner) to its last one. With frames arriving in
    C order, the open ones all share their index on the outermost downsampled non-frame axis and on every axis
    before it, so at most the product of the output sizes of the axes after it are open. Without a downsampled
    non-frame axis an output frame is completed by the very frame that opens it: nothing is held.
    """
    outer = list(zip(shape[:-2], downsampled[:-2], strict=True))
    first = next((axis for axis, (_, flag) in enumerate(outer) if flag), None)
    if first is None:
        return 0
    return math.prod((size + 1) // 2 if flag else size for size, flag in outer[first + 1 :])
