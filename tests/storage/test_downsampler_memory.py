"""Bounded memory: a level holds only the partial frames it needs, never input frames, however long the run."""

from __future__ import annotations

import gc
import math
import tracemalloc
import weakref

import numpy as np
import pytest

from daemon.storage.downsampler import Pyramid

# (name, shape, downsampled axes, the partial frames level 1 needs between two input frames)
LAYOUTS = [
    ("yx", (0, 9, 7), (1, 2), 0),
    ("z under t", (0, 5, 9, 7), (1, 2, 3), 1),
    ("z under t and c", (0, 3, 5, 9, 7), (2, 3, 4), 1),
    ("t space", (0, 5, 9, 7), (0, 1, 2, 3), 3),
    ("t space over c and z", (0, 3, 5, 9, 7), (0, 2, 3, 4), 9),
    ("t space over c", (0, 3, 9, 7), (0, 2, 3), 3),
]


def frames(shape, n, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.integers(0, 1000, shape[-2:], dtype=np.uint16) for _ in range(n))


@pytest.mark.parametrize("method", ["mean", "min", "max"])
@pytest.mark.parametrize(("name", "shape", "axes", "needed"), LAYOUTS, ids=[layout[0] for layout in LAYOUTS])
def test_open_blocks_never_exceed_what_the_level_needs(name, shape, axes, needed, method):
    pyramid = Pyramid(shape, axes, method, "uint16", 3)
    assert pyramid.stats().max_open_blocks[1] == needed
    inner = math.prod(shape[1:-2])
    for frame in frames(shape, 6 * inner + inner // 2):  # six outer steps and half of a seventh
        pyramid.push(frame)
        stats = pyramid.stats()
        assert all(o <= m for o, m in zip(stats.open_blocks, stats.max_open_blocks, strict=True)), stats
    stats = pyramid.stats()
    assert stats.peak_open_blocks[1] == needed  # the bound is tight: the level does need that many
    pyramid.finish()
    assert pyramid.stats().open_blocks == (0, 0, 0)


def test_decimate_holds_nothing():
    shape, axes = (0, 3, 5, 9, 7), (0, 2, 3, 4)
    pyramid = Pyramid(shape, axes, "decimate", "uint16", 3)
    for frame in frames(shape, 40):
        pyramid.push(frame)
    assert pyramid.stats().peak_open_blocks == (0, 0, 0)
    assert pyramid.stats().max_open_blocks == (0, 0, 0)


@pytest.mark.parametrize("method", ["mean", "decimate", "min", "max"])
@pytest.mark.parametrize("dtype", ["uint16", "int64", "float32"])
def test_no_input_frame_is_kept(method, dtype):
    shape, axes = (0, 3, 5, 9, 7), (0, 2, 3, 4)
    pyramid = Pyramid(shape, axes, method, dtype, 3)
    refs = []
    for _ in range(20):
        frame = np.ones(shape[-2:], dtype)
        refs.append(weakref.ref(frame))
        pyramid.push(frame)
        del frame
    gc.collect()
    assert [ref for ref in refs if ref() is not None] == []


@pytest.mark.parametrize("method", ["mean", "min"])
def test_memory_does_not_grow_with_the_run(method):
    shape, axes = (0, 2, 3, 64, 48), (0, 2, 3, 4)
    pyramid = Pyramid(shape, axes, method, "uint16", 3)
    per_step = math.prod(shape[1:-2])
    source = list(frames(shape, per_step))
    tracemalloc.start()
    try:
        for i in range(4 * per_step):  # warm up: every buffer and block allocated
            pyramid.push(source[i % per_step])
        gc.collect()  # empties CPython's free lists (tuples of indices), which tracemalloc counts as allocated
        warm, _ = tracemalloc.get_traced_memory()
        for i in range(40 * per_step):
            pyramid.push(source[i % per_step])
        gc.collect()
        after, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    frame_bytes = 64 * 48 * 2
    assert after - warm < frame_bytes, (warm, after)
