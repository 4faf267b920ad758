"""Settings accept enums or strings (and numpy dtypes) and normalise them, like acquire-zarr's API."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from daemon.storage import (
    ArraySettings,
    CompressionCodec,
    CompressionSettings,
    DataType,
    Dimension,
    DimensionType,
    Shuffle,
    StreamSettings,
    ZarrVersion,
)


def test_dimension_type_accepts_strings_and_enums() -> None:
    assert Dimension("t", "TIME", 0, 1).kind is DimensionType.TIME
    assert Dimension("t", DimensionType.TIME, 0, 1).type is DimensionType.TIME
    assert Dimension("t", "time", 0, 1).is_append


@pytest.mark.parametrize("value", ["uint16", "<u2", "=u2", np.uint16, np.dtype("uint16"), DataType.UINT16, "UINT16"])
def test_data_type_accepts_names_dtypes_and_enums(value: object) -> None:
    dims = [Dimension("t", "time", 0, 1), Dimension("y", "space", 2, 2), Dimension("x", "space", 2, 2)]
    if value == "UINT16":
        value = DataType["UINT16"]
    array = ArraySettings(data_type=value, dimensions=dims)  # type: ignore[arg-type]
    assert array.data_type is DataType.UINT16
    assert array.dtype == np.dtype("<u2")


def test_compression_defaults_follow_the_codec() -> None:
    assert CompressionSettings().codec is CompressionCodec.BLOSC_LZ4
    assert CompressionSettings("blosc-zstd").shuffle is Shuffle.BYTE
    assert CompressionSettings("zstd").shuffle is Shuffle.NONE
    assert CompressionSettings(CompressionCodec.BLOSC_ZLIB, 9, Shuffle.BIT).shuffle is Shuffle.BIT
    assert CompressionSettings("blosc-lz4", 1, 2).shuffle is Shuffle.BIT  # acquire-zarr's integer shuffle


def test_stream_settings_normalise_version_arrays_and_metadata() -> None:
    dims = [Dimension("t", "time", 0, 1), Dimension("y", "space", 2, 2), Dimension("x", "space", 2, 2)]
    settings = StreamSettings(
        store_path="x.zarr", version=2, arrays=[ArraySettings(dimensions=dims)], custom_metadata='{"a": [1, 2]}'
    )
    assert settings.version is ZarrVersion.V2
    assert isinstance(settings.arrays, tuple)
    assert settings.custom_attributes == {"a": [1, 2]}
    assert settings.threads >= 1


def test_settings_are_frozen() -> None:
    dim = Dimension("t", "time", 0, 1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        dim.chunk_size_px = 2  # type: ignore[misc]
