"""Level planning: which levels a pyramid has, their shapes, scale factors, and bad plans refused."""

from __future__ import annotations

import numpy as np
import pytest

from daemon.errors import ConfigError
from daemon.storage.pyramid import PyramidLevel, level_shapes, max_open_blocks, plan_levels


def shapes(levels: tuple[PyramidLevel, ...]) -> list[tuple[int, ...]]:
    return [level.shape for level in levels]


def test_levels_are_added_until_every_space_axis_fits_one_chunk():
    levels = plan_levels((0, 2048, 2048), (64, 512, 512), (1, 2))
    assert shapes(levels) == [(0, 2048, 2048), (0, 1024, 1024), (0, 512, 512)]
    assert [level.scale for level in levels] == [(1, 1, 1), (1, 2, 2), (1, 4, 4)]


def test_odd_sizes_round_up():
    levels = plan_levels((511, 333), (64, 64), (0, 1))
    assert shapes(levels) == [(511, 333), (256, 167), (128, 84), (64, 42)]


def test_a_downsampled_z_axis_counts_for_the_stop_rule_and_keeps_halving():
    levels = plan_levels((3, 100, 64, 64), (1, 16, 64, 64), (1, 2, 3))  # c, z, y, x: only z is too large
    assert shapes(levels) == [(3, 100, 64, 64), (3, 50, 32, 32), (3, 25, 16, 16), (3, 13, 8, 8)]
    assert levels[-1].scale == (1, 8, 8, 8)


def test_the_unbounded_append_axis_is_halved_but_does_not_count_for_the_stop_rule():
    levels = plan_levels((0, 256, 256), (1, 64, 64), (0, 1, 2))  # t of type space, chunk 1: would never fit
    assert shapes(levels) == [(0, 256, 256), (0, 128, 128), (0, 64, 64)]
    assert levels[-1].scale == (4, 4, 4)


def test_axes_not_downsampled_keep_their_size_and_scale_one():
    levels = plan_levels((0, 3, 5, 300, 200), (1, 1, 1, 100, 100), (2, 3, 4))  # t, c, z: z fits at size 1
    assert shapes(levels) == [(0, 3, 5, 300, 200), (0, 3, 3, 150, 100), (0, 3, 2, 75, 50), (0, 3, 1, 38, 25)]
    assert [level.scale[:2] for level in levels] == [(1, 1)] * 4


def test_a_frame_that_fits_one_chunk_has_no_pyramid():
    assert shapes(plan_levels((0, 512, 512), (1, 512, 512), (1, 2))) == [(0, 512, 512)]
    assert shapes(plan_levels((0, 100, 100), (1, 512, 512), (1, 2))) == [(0, 100, 100)]


@pytest.mark.parametrize(("max_levels", "expected"), [(1, 1), (2, 2), (3, 3), (4, 3), (None, 3)])
def test_max_levels_counts_level_zero_and_caps_the_plan(max_levels, expected):
    assert len(plan_levels((0, 2048, 2048), (1, 512, 512), (1, 2), max_levels)) == expected


def test_level_shapes_gives_the_first_n_levels():
    assert shapes(level_shapes((5, 7, 9), (0, 1, 2), 4)) == [(5, 7, 9), (3, 4, 5), (2, 2, 3), (1, 1, 2)]


@pytest.mark.parametrize(
    ("shape", "downsampled", "expected"),
    [
        ((0, 7, 9), (False, True, True), 0),  # yx only: completed by the frame that opens it
        ((0, 5, 7, 9), (False, True, True, True), 1),  # z under t: the previous z-plane
        ((0, 3, 5, 7, 9), (False, False, True, True, True), 1),
        ((0, 5, 7, 9), (True, True, True, True), 3),  # t space: a whole t-block of output z-planes
        ((0, 3, 5, 7, 9), (True, False, True, True, True), 9),
        ((0, 3, 5, 7, 9), (True, False, False, True, True), 15),
    ],
)
def test_max_open_blocks(shape, downsampled, expected):
    assert max_open_blocks(shape, downsampled) == expected


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"shape": (5,)}, ["shape", "at least 2"]),
        ({"shape": (0, 5)}, ["shape[0]", ">= 1", "Got 0"]),
        ({"shape": (0, 0, 5)}, ["shape[1]", ">= 1"]),
        ({"chunk_shape": (1, 1)}, ["chunk_shape", "3 entries"]),
        ({"chunk_shape": (1, 0, 1)}, ["chunk_shape[1]", ">= 1", "Got 0"]),
        ({"downsample_axes": (1, 3)}, ["downsample_axes", "[-3, 2]", "Got 3"]),
        ({"downsample_axes": (0, 1)}, ["downsample_axes", "y and x", "Got [0, 1]"]),
        ({"max_levels": 0}, ["max_levels", ">= 1", "Got 0"]),
        ({"shape": (0, 8.5, 8)}, ["shape[1]", "an integer", "Got 8.5"]),
        ({"chunk_shape": (1, "2", 2)}, ["chunk_shape[1]", "an integer", "Got '2'"]),
        ({"downsample_axes": (1.0, 2)}, ["downsample_axes entry", "an integer", "Got 1.0"]),
    ],
)
def test_bad_plans_are_refused_with_the_field_and_what_is_accepted(kwargs, words):
    args = {"shape": (0, 8, 8), "chunk_shape": (1, 2, 2), "downsample_axes": (1, 2), "max_levels": None} | kwargs
    with pytest.raises(ConfigError) as caught:
        plan_levels(**args)
    for word in words:
        assert word in str(caught.value)


def test_level_shapes_refuses_zero_levels():
    with pytest.raises(ConfigError, match=r"n_levels must be an integer >= 1\. Got 0"):
        level_shapes((0, 8, 8), (1, 2), 0)


def test_numpy_integers_are_accepted():
    levels = plan_levels(np.array([0, 64, 64]), np.array([1, 32, 32]), np.array([1, 2]), np.int64(5))
    assert shapes(levels) == [(0, 64, 64), (0, 32, 32)]
