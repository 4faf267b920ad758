"""The pyramid settings: a method by enum or name, and ``max_levels`` counting level 0 (refused without a method)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from daemon.errors import ConfigError
from daemon.storage import ArraySettings, Dimension, DownsamplingMethod


def array(**fields: Any) -> ArraySettings:
    dims = [Dimension("t", "time", 0, 1), Dimension("y", "space", 8, 4), Dimension("x", "space", 8, 4)]
    return ArraySettings(dimensions=dims, **fields)


@pytest.mark.parametrize("given", ["mean", "MEAN", DownsamplingMethod.MEAN])
def test_a_method_is_given_by_enum_or_name(given: object) -> None:
    settings = array(downsampling_method=given)
    assert settings.downsampling_method is DownsamplingMethod.MEAN
    assert settings.method is DownsamplingMethod.MEAN


def test_no_method_means_no_pyramid() -> None:
    assert array().method is None
    assert array().max_levels is None


@pytest.mark.parametrize("levels", [1, 2, np.int64(5)])
def test_max_levels_is_an_integer_from_one(levels: int) -> None:
    settings = array(downsampling_method="decimate", max_levels=levels)
    assert settings.max_levels == levels
    assert type(settings.max_levels) is int


@pytest.mark.parametrize(("levels", "got"), [(0, "Got 0"), (-2, "Got -2"), (True, "Got True"), (2.0, "Got 2.0")])
def test_max_levels_below_one_or_not_an_integer_is_refused(levels: object, got: str) -> None:
    with pytest.raises(ConfigError, match="max_levels must be None") as failure:
        array(downsampling_method="max", max_levels=levels)
    assert "level 0 included" in str(failure.value)
    assert "acquire-zarr" in str(failure.value)
    assert got in str(failure.value)


def test_max_levels_without_a_method_is_refused() -> None:
    with pytest.raises(ConfigError, match="max_levels needs a downsampling_method") as failure:
        array(max_levels=3)
    assert "Got max_levels 3 and downsampling_method None" in str(failure.value)


def test_an_unknown_method_lists_the_methods() -> None:
    with pytest.raises(ConfigError, match="downsampling_method must be one of 'mean', 'decimate', 'min', 'max'"):
        array(downsampling_method="median")
