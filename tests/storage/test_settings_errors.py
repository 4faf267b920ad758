"""Every invalid setting fails when built, with a message naming the field, the value and what is accepted."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from daemon.errors import ConfigError
from daemon.storage import ArraySettings, CompressionSettings, Dimension, StreamSettings
from daemon.storage.s3_settings import S3Settings


def d3(**overrides: Any) -> list[Dimension]:
    """A valid (t, y, x) with overrides applied to y."""
    y = {"name": "y", "type": "space", "array_size_px": 8, "chunk_size_px": 4, **overrides}
    return [Dimension("t", "time", 0, 1), Dimension(**y), Dimension("x", "space", 8, 4)]


def array(**overrides: Any) -> ArraySettings:
    values: dict[str, Any] = {"data_type": "uint16", "dimensions": d3(), **overrides}
    return ArraySettings(**values)


def stream(**overrides: Any) -> StreamSettings:
    values: dict[str, Any] = {"store_path": "/tmp/never-written.zarr", "arrays": [array()], **overrides}
    return StreamSettings(**values)


CASES: list[tuple[str, Callable[[], object], list[str]]] = [
    ("dim-name-empty", lambda: Dimension("", "space", 1, 1), ["name", "non-empty"]),
    ("dim-type", lambda: d3(type="spatial"), ["type of dimension 'y'", "'space'", "'channel'", "'time'", "'other'",
                                               "'spatial'"]),
    ("dim-size-negative", lambda: d3(array_size_px=-1), ["array_size_px of dimension 'y'", ">= 0", "-1"]),
    ("dim-size-not-int", lambda: d3(array_size_px=2.5), ["array_size_px of dimension 'y'", "integer", "2.5"]),
    ("dim-chunk-zero", lambda: d3(chunk_size_px=0), ["chunk_size_px of dimension 'y'", ">= 1", "Got 0"]),
    ("dim-shard-zero", lambda: d3(shard_size_chunks=0), ["shard_size_chunks of dimension 'y'", ">= 1", "Got 0"]),
    ("dim-scale-zero", lambda: d3(scale=0), ["scale of dimension 'y'", "> 0", "Got 0"]),
    ("dim-unit-empty", lambda: d3(unit=""), ["unit of dimension 'y'", "non-empty string or None"]),
    ("too-few-dims", lambda: array(dimensions=d3()[1:]), ["dimensions", "at least 3", "Got 2"]),
    ("duplicate-names", lambda: array(dimensions=[*d3()[:2], Dimension("y", "space", 8, 4)]),
     ["dimensions", "unique names", "'y' twice"]),
    ("last-two-not-space", lambda: array(dimensions=[*d3()[:2], Dimension("x", "channel", 8, 4)]),
     ["type of dimension 'x'", "must be 'space'", "'channel'"]),
    ("append-not-first", lambda: array(dimensions=[Dimension("t", "time", 3, 1), *d3(array_size_px=0)[1:]]),
     ["array_size_px of dimension 'y'", "only the first dimension may be 0", "Got 0"]),
    ("codec", lambda: CompressionSettings("lz4"), ["compression.codec", "'blosc-lz4'", "'blosc-zstd'",
                                                    "'blosc-blosclz'", "'blosc-zlib'", "'zstd'", "'lz4'"]),
    ("blosc-level", lambda: CompressionSettings("blosc-lz4", 10), ["compression.level", "between 0 and 9", "Got 10"]),
    ("blosc-level-negative", lambda: CompressionSettings("blosc-zstd", -1),
     ["compression.level", "between 0 and 9", "Got -1"]),
    ("zstd-level", lambda: CompressionSettings("zstd", 23), ["compression.level", "'zstd'", "and 22", "Got 23"]),
    ("shuffle", lambda: CompressionSettings("blosc-lz4", 1, "word"),
     ["compression.shuffle", "'none'", "'byte'", "'bit'", "'word'"]),
    ("zstd-shuffle", lambda: CompressionSettings("zstd", 1, "byte"),
     ["compression.shuffle", "must be 'none'", "'zstd'", "'byte'"]),
    ("data-type", lambda: array(data_type="complex64"), ["data_type", "'uint8'", "'float64'", "complex64"]),
    ("data-type-unknown", lambda: array(data_type="pixels"), ["data_type", "'uint16'", "pixels"]),
    ("data-type-big-endian", lambda: array(data_type=np.dtype(">u2")), ["data_type", "little-endian", ">u2"]),
    ("output-key", lambda: array(output_key="a//b"), ["output_key", "a//b", "letters, digits"]),
    ("downsampling-unknown", lambda: array(downsampling_method="median"),
     ["downsampling_method", "'mean'", "'decimate'", "'min'", "'max'", "'median'"]),
    ("max-levels", lambda: array(max_levels=-1), ["max_levels", ">= 1", "-1"]),
    ("compression-type", lambda: array(compression="lz4"), ["compression", "CompressionSettings or None", "'lz4'"]),
    ("store-path", lambda: stream(store_path=""), ["store_path", "non-empty"]),
    ("version", lambda: stream(version=4), ["version", "2, 3", "Got 4"]),
    ("max-threads", lambda: stream(max_threads=-1), ["max_threads", "between 0 and 256", "-1"]),
    ("no-arrays", lambda: stream(arrays=[]), ["arrays", "at least one"]),
    ("array-type", lambda: stream(arrays=[{"output_key": "a"}]), ["arrays[0]", "ArraySettings"]),
    ("duplicate-keys", lambda: stream(arrays=[array(output_key="a"), array(output_key="a")]),
     ["output_key", "unique", "'a' twice"]),
    ("nested-keys", lambda: stream(arrays=[array(output_key="a"), array(output_key="a/b")]),
     ["output_key 'a/b'", "nest inside", "'a'"]),
    ("root-and-other", lambda: stream(arrays=[array(output_key=""), array(output_key="b")]),
     ["output_key 'b'", "nest inside", "''"]),
    ("v2-shards", lambda: stream(version=2, arrays=[array(dimensions=d3(shard_size_chunks=2))]),
     ["shard_size_chunks of dimension 'y'", "None or 1", "version 2", "Got 2"]),
    ("custom-metadata-reserved", lambda: stream(custom_metadata={"ome": {}}),
     ["custom_metadata", "'ome'", "'multiscales'"]),
    ("custom-metadata-not-json", lambda: stream(custom_metadata={"a": object()}),
     ["custom_metadata", "JSON-serialisable"]),
    ("custom-metadata-not-object", lambda: stream(custom_metadata="[1, 2]"), ["custom_metadata", "JSON object"]),
    ("custom-metadata-bad-json", lambda: stream(custom_metadata="{oops"), ["custom_metadata", "invalid JSON"]),
    ("s3-type", lambda: stream(s3={"endpoint": "http://x"}), ["s3", "S3Settings or None"]),
]  # fmt: skip


@pytest.mark.parametrize(("make", "words"), [pytest.param(m, w, id=i) for i, m, w in CASES])
def test_an_invalid_setting_names_the_field_and_what_is_accepted(make: Callable[[], object], words: list[str]) -> None:
    with pytest.raises(ConfigError) as failure:
        make()
    message = str(failure.value)
    for word in words:
        assert word in message, f"{word!r} not in {message!r}"


def test_config_errors_are_value_errors() -> None:
    with pytest.raises(ValueError, match="chunk_size_px"):
        d3(chunk_size_px=0)


def test_s3_settings_are_accepted() -> None:
    settings = stream(s3=S3Settings(endpoint="http://127.0.0.1:1"))
    assert settings.s3 is not None
