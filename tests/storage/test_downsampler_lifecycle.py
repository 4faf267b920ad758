"""The pyramid's lifecycle and contract: push, finish (idempotent), what it refuses, what it returns."""

from __future__ import annotations

import enum

import numpy as np
import pytest

from daemon.errors import ConfigError, StreamClosedError
from daemon.storage.downsampler import Pyramid


def make(shape=(0, 3, 8, 6), axes=(0, 1, 2, 3), method="mean", dtype="uint16", n_levels=3):
    return Pyramid(shape, axes, method, dtype, n_levels)


def test_finish_is_idempotent():
    pyramid = make()
    for _ in range(4):
        pyramid.push(np.ones((8, 6), np.uint16))
    first = pyramid.finish()
    stats = pyramid.stats()
    assert first  # t1 z1 is open at level 1, its block completes at finish
    assert pyramid.finish() == []
    assert pyramid.stats() == stats


def test_push_after_finish_is_refused():
    pyramid = make()
    pyramid.finish()
    with pytest.raises(StreamClosedError, match="finish"):
        pyramid.push(np.ones((8, 6), np.uint16))


@pytest.mark.parametrize(
    ("frame", "words"),
    [
        (np.ones((6, 8), np.uint16), ["shape (8, 6)", "Got shape (6, 8)"]),
        (np.ones((8, 6), np.int16), ["dtype uint16", "dtype int16"]),
        (np.ones((8, 6, 1), np.uint16), ["shape (8, 6)", "Got shape (8, 6, 1)"]),
        ([[1] * 6] * 8, ["numpy array", "list"]),
    ],
)
def test_a_wrong_frame_is_refused_with_what_is_expected(frame, words):
    with pytest.raises(ConfigError) as caught:
        make().push(frame)
    for word in words:
        assert word in str(caught.value)


def test_a_bounded_array_refuses_frames_beyond_its_end():
    pyramid = make(shape=(2, 3, 8, 6))
    for _ in range(6):
        pyramid.push(np.ones((8, 6), np.uint16))
    with pytest.raises(ConfigError, match=r"frame 6 is beyond the array: shape \(2, 3, 8, 6\) holds 6 frames"):
        pyramid.push(np.ones((8, 6), np.uint16))


def test_a_single_level_pyramid_emits_nothing():
    pyramid = make(n_levels=1)
    assert pyramid.push(np.ones((8, 6), np.uint16)) == []
    assert pyramid.finish() == []
    assert pyramid.stats().frames == (1,)


def test_a_yx_pyramid_emits_every_level_on_every_push_lowest_first():
    pyramid = make(shape=(0, 8, 6), axes=(1, 2), n_levels=4)
    for k in range(3):
        emitted = pyramid.push(np.full((8, 6), k, np.uint16))
        assert [(level, frame.shape) for level, frame in emitted] == [(1, (4, 3)), (2, (2, 2)), (3, (1, 1))]
        assert all((frame == k).all() for _, frame in emitted)
    assert pyramid.finish() == []
    assert pyramid.stats().frames == (3, 3, 3, 3)


def test_finish_returns_independent_arrays():
    pyramid = make(shape=(0, 4, 8, 6), axes=(0, 1, 2, 3))
    for _ in range(4):  # t0 whole: every level-1 and level-2 frame is still open
        pyramid.push(np.ones((8, 6), np.uint16))
    emitted = pyramid.finish()
    assert [level for level, _ in emitted] == [1, 1, 2]
    arrays = [frame for _, frame in emitted]
    assert not any(np.shares_memory(a, b) for i, a in enumerate(arrays) for b in arrays[i + 1 :])


class Method(enum.Enum):
    MEAN = "mean"


def test_a_method_may_be_an_enum_of_the_name():
    assert make(method=Method.MEAN).method == "mean"


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"method": "median"}, ["downsampling method", "mean, decimate, min, max", "'median'"]),
        ({"dtype": "float16"}, ["dtype", "uint16", "float64", "'float16'"]),
        ({"dtype": "bool"}, ["dtype", "int8", "'bool'"]),
        ({"dtype": ">u2"}, ["dtype", "native", "'>u2'"]),
        ({"dtype": "not a type"}, ["dtype", "'not a type'"]),
        ({"n_levels": 0}, ["n_levels", ">= 1"]),
    ],
)
def test_bad_settings_are_refused_with_the_field_and_what_is_accepted(kwargs, words):
    with pytest.raises(ConfigError) as caught:
        make(**kwargs)
    for word in words:
        assert word in str(caught.value)
