"""The streaming multiscale downsampler: frames of level 0 in, frames of every coarser level out (pure numpy).

A :class:`Pyramid` takes level-0 frames one at a time in acquisition order (C order over the non-frame axes) and
returns the frames of levels 1.. as soon as they are complete, each level's frames in that level's own C order, so
each level can be appended to its own array writer. Level ``n`` is computed from level ``n - 1`` (iterative 2x
reduction over every downsampled axis); level shapes come from :mod:`daemon.storage.pyramid`.

Design notes:
- Blocks: an output sample reduces the 2x2 (yx) times 2 per downsampled outer axis input samples that exist. At
  an odd edge the block is smaller (1..2**m samples); a ragged end of the run (the append axis stops anywhere, even
  mid z-stack) leaves blocks partly filled, and frames never acquired are not samples: nothing is padded with zeros.
  ``finish()`` reduces those partial blocks with the samples they have; output frames without any sample are not
  emitted (the level's array keeps its fill value there). Each level's emitted frames form a C-order prefix.
- Methods: ``mean``; ``decimate`` (the first sample of each block: lowest index on every axis); ``min``; ``max``.
  NaN propagates through mean, min and max (numpy ``minimum``/``maximum``).
- Integer mean is exact and rounds half to even on the exact rational (unbiased when levels are chained). 8/16-bit
  values are summed in float32 and 32-bit ones in float64, where every sum is an exact integer (the fastest numpy
  path, and ``rint`` rounds half to even); the quotient by a power of two is exact, by another count (ragged ends)
  it lands far enough from a tie that ``rint`` still decides as the exact rational would. 64-bit values are split
  as ``v = 2**m * (v >> m) + (v & (2**m - 1))`` (m = number of downsampled axes, so 2**m >= samples per block):
  both parts are summed in 64-bit integers without overflow and recombined exactly in the division.
- Float mean: summed in float64 and divided, then cast back to the input dtype (float32 gains accuracy this way).
  A float64 block whose sum exceeds the float64 range gives +-inf (values beyond ~1e307).
- Memory: a level holds only partial output frames ("open blocks"): sums (mean) or running min/max at the output
  size, never input frames, and never level 0 again. With frames in C order that is at most
  :func:`~daemon.storage.pyramid.max_open_blocks` (e.g. one when z is downsampled under an undownsampled t; a whole
  outer block of output frames when the append axis is downsampled). Decimate emits a frame at its first sample
  and holds nothing. Block buffers are reused (a free list), as are per-level scratch and output buffers.
- Returned frames from ``push`` are views of per-level output buffers, valid until the next ``push``: copy them to
  keep them (the array writer copies frames into its chunk buffers anyway). ``finish`` returns fresh arrays.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from daemon.errors import ConfigError, StreamClosedError
from daemon.storage.pyramid import PyramidLevel, level_shapes, max_open_blocks, parse_downsample_axes

DOWNSAMPLING_METHODS = ("mean", "decimate", "min", "max")
SUPPORTED_DTYPES = ("int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64", "float32", "float64")

Array = npt.NDArray[Any]
Emitted = list[tuple[int, Array]]


def parse_method(method: str | enum.Enum) -> str:
    """Accept a method name or an enum whose value is one (e.g. the engine's ``DownsamplingMethod``)."""
    value = method.value if isinstance(method, enum.Enum) else method
    if value not in DOWNSAMPLING_METHODS:
        raise ConfigError(f"downsampling method must be one of {', '.join(DOWNSAMPLING_METHODS)}. Got {method!r}.")
    return str(value)


def parse_dtype(dtype: npt.DTypeLike) -> np.dtype[Any]:
    """A numpy dtype among the supported ones (8-64 bit integers, float32, float64); byte order is native."""
    try:
        parsed = np.dtype(dtype)
    except TypeError as exc:
        raise ConfigError(f"dtype must be one of {', '.join(SUPPORTED_DTYPES)}. Got {dtype!r} instead.") from exc
    if parsed.name not in SUPPORTED_DTYPES or not parsed.isnative:
        raise ConfigError(f"dtype must be one of {', '.join(SUPPORTED_DTYPES)} (native order). Got {dtype!r}.")
    return parsed


@dataclass(frozen=True, slots=True)
class PyramidStats:
    """A snapshot per level (index = level): frames emitted (level 0: pushed) and partial frames held."""

    frames: tuple[int, ...]
    open_blocks: tuple[int, ...]
    peak_open_blocks: tuple[int, ...]
    max_open_blocks: tuple[int, ...]


@dataclass(slots=True)
class _Block:
    """A partial output frame: accumulator planes and the number of input frames reduced into it."""

    planes: list[Array]
    samples: int = 0


def _combine(op: np.ufunc, a: Array, b: Array, out: Array) -> None:
    if a.dtype == out.dtype:
        op(a, b, out=out)
    else:  # widen first: a mixed-type ufunc call casts through small buffers and is ~3x slower
        np.copyto(out, a)
        op(out, b, out=out)


def _reduce_rows(src: Array, rows: Array, op: np.ufunc) -> None:
    """Pairs of rows of ``src`` -> ``rows`` (an odd last row is copied alone)."""
    pairs = src.shape[0] // 2
    if pairs:
        _combine(op, src[0 : 2 * pairs : 2], src[1 : 2 * pairs : 2], rows[:pairs])
    if src.shape[0] % 2:
        np.copyto(rows[pairs], src[-1])


def _reduce_cols(rows: Array, dst: Array, op: np.ufunc, first: bool) -> None:
    """Pairs of columns of ``rows`` -> ``dst``, written (``first``) or combined into what ``dst`` holds."""
    pairs = rows.shape[1] // 2
    left, right = rows[:, 0 : 2 * pairs : 2], rows[:, 1 : 2 * pairs : 2]
    if first:
        if pairs:
            op(left, right, out=dst[:, :pairs])
        if rows.shape[1] % 2:
            np.copyto(dst[:, pairs], rows[:, -1])
        return
    if pairs:
        op(dst[:, :pairs], left, out=dst[:, :pairs])
        op(dst[:, :pairs], right, out=dst[:, :pairs])
    if rows.shape[1] % 2:
        op(dst[:, pairs], rows[:, -1], out=dst[:, pairs])


def _yx_regions(in_yx: tuple[int, int]) -> list[tuple[tuple[slice, slice], int]]:
    """Output regions of constant yx block size: (region, samples per output pixel), 4 / 2 / 2 / 1."""
    per_axis = []
    for size in in_yx:
        pairs = size // 2
        parts = [(slice(0, pairs), 2)] if pairs else []
        if size % 2:
            parts.append((slice(pairs, pairs + 1), 1))
        per_axis.append(parts)
    return [((ys, xs), ny * nx) for ys, ny in per_axis[0] for xs, nx in per_axis[1]]


def _round_up_half_even(quotient: Array, remainder: Array, n: int, out: Array) -> None:
    """``out = quotient + 1`` where ``2 * remainder + (quotient odd) > n`` (ties to even), else ``quotient``.

    ``0 <= remainder < n`` (floor division); ``remainder`` is clobbered.
    """
    np.add(remainder, remainder, out=remainder)
    np.add(remainder, quotient & 1, out=remainder)
    np.add(quotient, remainder > n, out=out, casting="unsafe")


def _round_half_even_split(high: Array, low: Array, bits: int, n: int, out: Array) -> None:
    """``out = round_half_even((2**bits * high + low) / n)`` exactly, in integers (64-bit values split in two).

    ``high`` and ``low`` are clobbered. A power-of-two ``n`` (every block but those cut by a ragged end) is done in
    place with shifts; 2**bits is a multiple of it since a block has at most 2**bits samples.
    """
    if n & (n - 1):
        q_high, r_high = np.divmod(high, n)
        q_low, remainder = np.divmod(r_high * (1 << bits) + low, n)
        _round_up_half_even(q_high * (1 << bits) + q_low, remainder, n, out)
        return
    k = n.bit_length() - 1
    remainder = np.bitwise_and(low, n - 1)
    np.right_shift(low, k, out=low)
    np.multiply(high, 1 << (bits - k), out=high)
    np.add(high, low, out=high)
    _round_up_half_even(high, remainder, n, out)


def _mean_accumulator(dtype: np.dtype[Any], n_downsampled: int) -> np.dtype[Any] | None:
    """A float type whose sums of 2**m samples are exact integers (float32 for 8/16-bit, float64 for 32-bit)."""
    if dtype.kind == "f":
        return np.dtype("float64")
    info = np.iinfo(dtype)
    # sums exact (< 2**(nmant + 1)) with one bit to spare, so a quotient by a non-power-of-two count is rounded to
    # well within 1/2n of its exact value and rint decides ties as the exact rational would
    largest = max(info.max, -info.min) << (n_downsampled + 1)
    for candidate in ("float32", "float64"):
        if largest <= 2 ** (np.finfo(candidate).nmant + 1):
            return np.dtype(candidate)
    return None  # 64-bit integers: summed split in two integer parts instead


class _Kernel:
    """Reduces frames of one level into blocks (2x2 in yx, combined across outer samples) and finalizes them."""

    def __init__(self, method: str, dtype: np.dtype[Any], in_yx: tuple[int, int], n_downsampled: int) -> None:
        out_yx = ((in_yx[0] + 1) // 2, (in_yx[1] + 1) // 2)
        self._method = method
        self._op: np.ufunc = {"min": np.minimum, "max": np.maximum}.get(method, np.add)
        self._regions = _yx_regions(in_yx)
        accumulator = _mean_accumulator(dtype, n_downsampled) if method == "mean" else dtype
        self.acc_dtype = dtype if accumulator is None else accumulator  # None: 64-bit, summed split in two parts
        self._split_bits = n_downsampled if accumulator is None else 0
        self._rint = method == "mean" and dtype.kind != "f"
        self.out_yx = out_yx
        self.n_planes = 2 if self._split_bits else 1
        self._rows = np.empty((out_yx[0], in_yx[1]), self.acc_dtype)
        self._parts = [np.empty(in_yx, dtype) for _ in range(self.n_planes)] if self._split_bits else []

    def add(self, frame: Array, block: _Block, first: bool) -> None:
        """Reduce ``frame`` into ``block`` (``first``: overwrite what the block held)."""
        sources = [frame]
        if self._split_bits:
            high, low = self._parts
            np.right_shift(frame, self._split_bits, out=high)
            np.bitwise_and(frame, (1 << self._split_bits) - 1, out=low)
            sources = [high, low]
        for source, plane in zip(sources, block.planes, strict=True):
            _reduce_rows(source, self._rows, self._op)
            _reduce_cols(self._rows, plane, self._op, first)
        block.samples = 1 if first else block.samples + 1

    def finalize(self, block: _Block, out: Array) -> None:
        """Write the block's result into ``out`` (clobbers the block's planes)."""
        if self._method != "mean":
            np.copyto(out, block.planes[0])
            return
        for region, yx_samples in self._regions:
            n = block.samples * yx_samples
            if self._split_bits:
                high, low = (plane[region] for plane in block.planes)
                _round_half_even_split(high, low, self._split_bits, n, out[region])
                continue
            total = block.planes[0][region]
            if not self._rint:
                np.divide(total, n, out=out[region])
                continue
            # exact integer sums: dividing by a power of two is exact; by any other n (ragged ends) the rounding
            # error is far below 1/2n, the least distance from the exact quotient to a tie, so rint rounds as it would
            np.divide(total, n, out=total)
            np.rint(total, out=out[region], casting="unsafe")


class _LevelReducer:
    """Streams the frames of one level into the frames of the next, holding only open blocks."""

    def __init__(
        self, in_shape: tuple[int, ...], downsampled: tuple[bool, ...], method: str, dtype: np.dtype[Any]
    ) -> None:
        self._outer = in_shape[:-2]
        self._outer_downsampled = downsampled[:-2]
        in_yx = (in_shape[-2], in_shape[-1])
        self._kernel = None if method == "decimate" else _Kernel(method, dtype, in_yx, sum(downsampled))
        self._out = np.empty(((in_yx[0] + 1) // 2, (in_yx[1] + 1) // 2), dtype)
        self._open: dict[tuple[int, ...], _Block] = {}
        self._free: list[_Block] = []
        self._received = 0
        self.peak_open = 0
        self.max_open = 0 if self._kernel is None else max_open_blocks(in_shape, downsampled)

    @property
    def open_blocks(self) -> int:
        return len(self._open)

    def push(self, frame: Array) -> Array | None:
        """Take the next input frame; return the output frame it completes (a reused buffer) or None."""
        index = self._unravel(self._received)
        self._received += 1
        key = tuple(i >> 1 if flag else i for i, flag in zip(index, self._outer_downsampled, strict=True))
        first = not any(i & 1 for i, flag in zip(index, self._outer_downsampled, strict=True) if flag)
        kernel = self._kernel
        if kernel is None:  # decimate: the first sample is the result
            if not first:
                return None
            np.copyto(self._out, frame[::2, ::2])
            return self._out
        block = self._take_block(kernel) if first else self._open.pop(key)
        kernel.add(frame, block, first)
        if self._is_last(index):
            return self._finalize(kernel, block)
        self._open[key] = block
        self.peak_open = max(self.peak_open, len(self._open))
        return None

    def flush(self) -> Iterator[Array]:
        """Finalize every open block in C order (the run ended); each yielded buffer is reused by the next."""
        kernel = self._kernel
        if kernel is None:  # decimate holds nothing
            return
        for key in sorted(self._open):
            yield self._finalize(kernel, self._open.pop(key))

    def _unravel(self, k: int) -> tuple[int, ...]:
        index = []
        for size in reversed(self._outer[1:]):
            k, i = divmod(k, size)
            index.append(i)
        if self._outer:
            index.append(k)
        return tuple(reversed(index))

    def _is_last(self, index: tuple[int, ...]) -> bool:
        """Whether ``index`` is the last input of its block on every downsampled outer axis (size 0: unbounded)."""
        spans = zip(index, self._outer, self._outer_downsampled, strict=True)
        return all(i & 1 or i == size - 1 for i, size, flag in spans if flag)

    def _take_block(self, kernel: _Kernel) -> _Block:
        if self._free:
            return self._free.pop()
        return _Block([np.empty(kernel.out_yx, kernel.acc_dtype) for _ in range(kernel.n_planes)])

    def _finalize(self, kernel: _Kernel, block: _Block) -> Array:
        kernel.finalize(block, self._out)
        self._free.append(block)
        return self._out


class Pyramid:
    """Streams level-0 frames into levels 1..n_levels-1 of a multiscale pyramid.

    ``shape`` is level 0's shape (outermost first, the last two are y and x, ``shape[0] == 0`` for the unbounded
    append axis); ``downsample_axes`` the indices of the axes to halve (the space axes; y and x required);
    ``n_levels`` counts level 0 (from :func:`~daemon.storage.pyramid.plan_levels`).
    """

    def __init__(
        self,
        shape: Sequence[int],
        downsample_axes: Collection[int],
        method: str | enum.Enum,
        dtype: npt.DTypeLike,
        n_levels: int,
    ) -> None:
        self.method = parse_method(method)
        self.dtype = parse_dtype(dtype)
        self.levels: tuple[PyramidLevel, ...] = level_shapes(shape, downsample_axes, n_levels)
        flags = parse_downsample_axes(self.levels[0].shape, downsample_axes)
        self._reducers = [_LevelReducer(level.shape, flags, self.method, self.dtype) for level in self.levels[:-1]]
        outer = self.levels[0].shape[:-2]
        self._capacity = None if outer and outer[0] == 0 else math.prod(outer)
        self._frames = [0] * n_levels
        self._finished = False

    @property
    def frame_shape(self) -> tuple[int, int]:
        y, x = self.levels[0].shape[-2:]
        return (y, x)

    def push(self, frame: Array) -> Emitted:
        """Take the next level-0 frame; return the (level, frame) pairs it completes, lowest level first.

        The returned frames are reused buffers, valid until the next call: copy them to keep them.
        """
        if self._finished:
            raise StreamClosedError("the pyramid is finished: no frame can be pushed after finish().")
        self._check_frame(frame)
        self._frames[0] += 1
        emitted: Emitted = []
        self._cascade(0, frame, emitted, copy=False)
        return emitted

    def finish(self) -> Emitted:
        """The run ended: reduce every partial block with the samples it has and return the frames (fresh arrays).

        Each level's frames come in that level's C order. Idempotent: a second call returns nothing.
        """
        if self._finished:
            return []
        self._finished = True
        emitted: Emitted = []
        for level, reducer in enumerate(self._reducers, start=1):
            for frame in reducer.flush():
                self._emit(level, frame, emitted, copy=True)
                self._cascade(level, emitted[-1][1], emitted, copy=True)
        return emitted

    def stats(self) -> PyramidStats:
        """Frames per level and the partial frames held for each level (level 0 holds none)."""
        return PyramidStats(
            frames=tuple(self._frames),
            open_blocks=(0, *(r.open_blocks for r in self._reducers)),
            peak_open_blocks=(0, *(r.peak_open for r in self._reducers)),
            max_open_blocks=(0, *(r.max_open for r in self._reducers)),
        )

    def _cascade(self, level: int, frame: Array, emitted: Emitted, copy: bool) -> None:
        """Feed a frame of ``level`` up the pyramid as far as it completes frames."""
        for reducer_level in range(level, len(self._reducers)):
            out = self._reducers[reducer_level].push(frame)
            if out is None:
                return
            self._emit(reducer_level + 1, out, emitted, copy)
            frame = emitted[-1][1]

    def _emit(self, level: int, frame: Array, emitted: Emitted, copy: bool) -> None:
        self._frames[level] += 1
        emitted.append((level, frame.copy() if copy else frame))

    def _check_frame(self, frame: Array) -> None:
        if not isinstance(frame, np.ndarray) or frame.shape != self.frame_shape or frame.dtype != self.dtype:
            got = (getattr(frame, "shape", None), getattr(frame, "dtype", type(frame).__name__))
            raise ConfigError(
                f"frame must be a numpy array of shape {self.frame_shape} and dtype {self.dtype}. "
                f"Got shape {got[0]} and dtype {got[1]} instead."
            )
        if self._capacity is not None and self._frames[0] >= self._capacity:
            raise ConfigError(
                f"frame {self._frames[0]} is beyond the array: shape {self.levels[0].shape} holds "
                f"{self._capacity} frames."
            )
