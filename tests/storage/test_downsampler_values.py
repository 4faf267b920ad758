"""Every level the streaming pyramid emits equals an independent whole-array reference, value for value.

The reference works per output sample with Python ints (exact ``Fraction`` mean, rounded half to even by
``round``) or ``math.fsum`` for floats, on the frames that exist (a ragged end leaves blocks partly filled).
"""

from __future__ import annotations

import itertools
import math
import zlib
from fractions import Fraction

import numpy as np
import pytest

from daemon.storage.downsampler import Pyramid

INT_DTYPES = ["int8", "uint8", "int16", "uint16", "int32", "uint32", "int64", "uint64"]
FLOAT_DTYPES = ["float32", "float64"]
METHODS = ["mean", "decimate", "min", "max"]

# (name, level-0 shape, downsampled axes); shape[0] == 0 is the unbounded append axis
LAYOUTS = [
    ("yx", (7, 9), (0, 1)),
    ("z-space", (5, 7, 9), (0, 1, 2)),
    ("t-time", (0, 7, 9), (1, 2)),
    ("t-space", (0, 7, 9), (0, 1, 2)),
    ("c-channel z-space", (2, 5, 7, 5), (1, 2, 3)),
    ("t-time z-space", (0, 3, 7, 5), (1, 2, 3)),
    ("t-space z-space", (0, 3, 6, 5), (0, 1, 2, 3)),
    ("t-time c z-space", (0, 2, 3, 5, 7), (2, 3, 4)),
    ("t-space c z-space", (0, 2, 5, 6, 5), (0, 2, 3, 4)),
]


def unravel(k: int, outer: tuple[int, ...]) -> tuple[int, ...]:
    index = []
    for size in reversed(outer[1:]):
        k, i = divmod(k, size)
        index.append(i)
    if outer:
        index.append(k)
    return tuple(reversed(index))


def reduce_values(values: list, method: str, dtype: np.dtype):
    if method == "min":
        return min(values)
    if method == "max":
        return max(values)
    if dtype.kind == "f":
        return math.fsum(values) / len(values)
    return round(Fraction(sum(values), len(values)))  # round() of a Fraction is half to even


def reference_next(level: dict, flags: tuple[bool, ...], method: str, dtype: np.dtype):
    """The next level from the frames of this one that exist: {outer index: frame}."""
    blocks: dict[tuple[int, ...], list[tuple[tuple[int, ...], np.ndarray]]] = {}
    for index, frame in level.items():
        key = tuple(i // 2 if f else i for i, f in zip(index, flags[:-2], strict=True))
        blocks.setdefault(key, []).append((index, frame))
    result = {}
    for key in sorted(blocks):
        members = sorted(blocks[key], key=lambda m: m[0])
        height, width = members[0][1].shape
        out = np.empty(((height + 1) // 2, (width + 1) // 2), dtype)
        for y2, x2 in itertools.product(range(out.shape[0]), range(out.shape[1])):
            if method == "decimate":
                out[y2, x2] = members[0][1][2 * y2, 2 * x2]
                continue
            values = [
                frame[y, x].item()
                for _, frame in members
                for y in range(2 * y2, min(2 * y2 + 2, height))
                for x in range(2 * x2, min(2 * x2 + 2, width))
            ]
            out[y2, x2] = reduce_values(values, method, dtype)
        result[key] = out
    return result


def reference_pyramid(frames, shape, axes, method, dtype, n_levels):
    flags = tuple(a in axes for a in range(len(shape)))
    outer = tuple(shape[:-2])
    level = {unravel(k, outer): frame for k, frame in enumerate(frames)}
    levels = [level]
    for _ in range(n_levels - 1):
        level = reference_next(level, flags, method, np.dtype(dtype))
        outer = tuple((s + 1) // 2 if f else s for s, f in zip(outer, flags[:-2], strict=True))
        levels.append(level)
    return levels


def run_pyramid(frames, shape, axes, method, dtype, n_levels):
    pyramid = Pyramid(shape, axes, method, dtype, n_levels)
    got: list[list[np.ndarray]] = [[] for _ in range(n_levels)]
    for frame in frames:
        for level, out in pyramid.push(frame):
            got[level].append(out.copy())
    for level, out in pyramid.finish():
        got[level].append(out)
    return got, pyramid.stats()


def frames_for(shape, n_frames, dtype, rng, extremes=False):
    dtype = np.dtype(dtype)
    size = shape[-2:]
    if dtype.kind == "f":
        if extremes:
            info = np.finfo(dtype)
            pool = np.array([info.max, info.min, info.tiny, -info.tiny, 0.0, 1.5, -2.5], dtype)
            return [rng.choice(pool, size) for _ in range(n_frames)]
        return [(rng.standard_normal(size) * 1000).astype(dtype) for _ in range(n_frames)]
    info = np.iinfo(dtype)
    if extremes:  # mostly the extremes: sums overflow unless computed with care
        pool = np.array([info.min, info.max, info.max - 1, info.min + 1, 0, 1], dtype)
        return [rng.choice(pool, size, p=[0.35, 0.35, 0.1, 0.1, 0.05, 0.05]) for _ in range(n_frames)]
    return [rng.integers(info.min, info.max, size, dtype=dtype, endpoint=True) for _ in range(n_frames)]


def n_frames_for(shape, ragged: bool) -> int:
    inner = math.prod(shape[1:-2]) if len(shape) > 2 else 1
    if len(shape) == 2:
        return 1
    whole = shape[0] if shape[0] else 5  # unbounded: five outer steps
    # ragged: stop in the middle of the last outer step (mid z-stack), never on a block boundary
    return whole * inner - (inner // 2 + 1 if ragged and inner > 1 else 1 if ragged else 0)


def assert_levels_equal(got, expected, dtype, method):
    dtype = np.dtype(dtype)
    for level, (frames, reference) in enumerate(zip(got, expected, strict=True)):
        if level == 0:
            continue
        assert len(frames) == len(reference), f"level {level}: {len(frames)} frames, expected {len(reference)}"
        for i, (frame, want) in enumerate(zip(frames, reference.values(), strict=True)):
            assert frame.dtype == dtype
            assert frame.shape == want.shape, f"level {level} frame {i}"
            if dtype.kind == "f" and method == "mean":
                rtol = 1e-6 if dtype == np.float32 else 1e-12
                np.testing.assert_allclose(frame, want, rtol=rtol, atol=1e-9, err_msg=f"level {level} frame {i}")
            else:
                np.testing.assert_array_equal(frame, want, err_msg=f"level {level} frame {i}")


@pytest.mark.parametrize("ragged", [False, True], ids=["whole", "ragged"])
@pytest.mark.parametrize("dtype", ["uint16", "int64", "float32"])
@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize(("name", "shape", "axes"), LAYOUTS, ids=[layout[0] for layout in LAYOUTS])
def test_every_layout_matches_the_reference(name, shape, axes, method, dtype, ragged):
    rng = np.random.default_rng(zlib.crc32(f"{name} {method} {dtype} {ragged}".encode()))
    frames = frames_for(shape, n_frames_for(shape, ragged), dtype, rng)
    n_levels = 4  # 7 -> 4 -> 2 -> 1 on y: the last levels reduce odd, single-sample edges
    got, stats = run_pyramid(frames, shape, axes, method, dtype, n_levels)
    expected = reference_pyramid(frames, shape, axes, method, dtype, n_levels)
    assert_levels_equal(got, expected, dtype, method)
    assert stats.frames == tuple(len(level) for level in expected)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("dtype", INT_DTYPES + FLOAT_DTYPES)
def test_extreme_values_do_not_overflow(dtype, method):
    shape, axes = (0, 2, 5, 6, 5), (0, 2, 3, 4)  # t, c, z, y, x; all but c downsampled: 16 samples per block
    rng = np.random.default_rng(INT_DTYPES.index(dtype) if dtype in INT_DTYPES else 99)
    frames = frames_for(shape, n_frames_for(shape, ragged=True), dtype, rng, extremes=True)
    if np.dtype(dtype).kind == "f" and method == "mean":
        # a float sum of values of both signs near the range limit cancels catastrophically in any order, and
        # float64 sums past ~1.8e308 overflow (documented): mean is checked on magnitudes a 16-sample sum can hold
        frames = [np.abs(frame) / 16 if dtype == "float64" else np.abs(frame) for frame in frames]
    got, _ = run_pyramid(frames, shape, axes, method, dtype, 3)
    expected = reference_pyramid(frames, shape, axes, method, dtype, 3)
    assert_levels_equal(got, expected, dtype, method)


@pytest.mark.parametrize("dtype", INT_DTYPES)
@pytest.mark.parametrize("value", ["min", "max"])
def test_a_constant_extreme_frame_keeps_its_value(dtype, value):
    info = np.iinfo(dtype)
    constant = info.min if value == "min" else info.max
    shape, axes = (0, 3, 5, 7), (0, 1, 2, 3)
    frames = [np.full((5, 7), constant, dtype) for _ in range(9)]  # ragged: 3 t-steps of 3 z
    got, _ = run_pyramid(frames, shape, axes, "mean", dtype, 3)
    for level in got[1:]:
        assert level
        for frame in level:
            assert (frame == constant).all()


@pytest.mark.parametrize("dtype", ["int8", "int16", "int32", "int64", "float32"])
@pytest.mark.parametrize(
    ("pair", "mean"),
    [((0, 1), 0), ((1, 2), 2), ((2, 3), 2), ((-1, -2), -2), ((-1, 0), 0), ((-3, -2), -2), ((5, 6), 6)],
)
def test_integer_mean_rounds_half_to_even(dtype, pair, mean):
    frame = np.array([pair], dtype)  # 1 x 2: one output sample, the mean of two
    got, _ = run_pyramid([frame], (1, 2), (0, 1), "mean", dtype, 2)
    expected = mean if np.dtype(dtype).kind != "f" else sum(pair) / 2
    assert got[1][0].tolist() == [[expected]]


@pytest.mark.parametrize("dtype", ["uint8", "uint16", "uint32", "uint64"])
def test_unsigned_mean_rounds_half_to_even_across_blocks_of_many_sizes(dtype):
    # t, z, y, x all downsampled, stopped at t3 z0: blocks of 1..16 samples, including 3, 6 and 12
    shape, axes = (0, 3, 3, 3), (0, 1, 2, 3)
    rng = np.random.default_rng(7)
    top = np.iinfo(dtype).max
    frames = [rng.choice(np.array([0, 1, 2, 3, top - 1, top], dtype), (3, 3)) for _ in range(3 * 3 + 1)]
    got, _ = run_pyramid(frames, shape, axes, "mean", dtype, 3)
    expected = reference_pyramid(frames, shape, axes, "mean", dtype, 3)
    assert_levels_equal(got, expected, dtype, "mean")


def test_odd_large_frames_match_the_reference_on_samples():
    shape, axes = (0, 511, 333), (0, 1, 2)
    rng = np.random.default_rng(3)
    frames = frames_for(shape, 3, "uint16", rng)
    got, _ = run_pyramid(frames, shape, axes, "mean", "uint16", 2)
    # level 1: t blocks (0, 1) and (2,); check the corners and a few interior samples against exact means
    for t_block, members in ((0, frames[0:2]), (1, frames[2:3])):
        out = got[1][t_block]
        assert out.shape == (256, 167)
        for y2, x2 in [(0, 0), (255, 166), (255, 0), (0, 166), (100, 80)]:
            values = [
                f[y, x].item()
                for f in members
                for y in (2 * y2, 2 * y2 + 1)
                for x in (2 * x2, 2 * x2 + 1)
                if y < 511 and x < 333
            ]
            assert out[y2, x2] == round(Fraction(sum(values), len(values)))


def test_nan_propagates_through_mean_min_and_max():
    frame = np.array([[np.nan, 1.0], [2.0, 3.0]], np.float32)
    for method in ("mean", "min", "max"):
        got, _ = run_pyramid([frame], (2, 2), (0, 1), method, "float32", 2)
        assert np.isnan(got[1][0]).all(), method
