"""Stream settings survive the trip through JSON exactly, and bad JSON is refused naming the field."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest

from daemon.errors import ConfigError
from daemon.ipc.stream_settings import SenderSettings
from daemon.storage import ArraySettings, CompressionSettings, Dimension, StreamSettings
from daemon.storage.s3_settings import S3Settings
from daemon.storage.settings_json import (
    WorkerConfig,
    parse_worker_config,
    stream_settings_from_json,
    stream_settings_to_json,
    worker_config,
)

DIMS = [Dimension("t", "time", 0, 4), Dimension("y", "space", 8, 8), Dimension("x", "space", 16, 16)]


def every_field_set(version: int) -> StreamSettings:
    """Settings where every field differs from its default (and enums, None and nesting all occur)."""
    shard = 2 if version == 3 else None
    dims = [
        Dimension("t", "time", 0, 4, shard_size_chunks=shard, unit="second", scale=0.25),
        Dimension("c", "channel", 3, 1, shard_size_chunks=shard),
        Dimension("y", "space", 100, 32, shard_size_chunks=shard, unit="micrometer", scale=0.065),
        Dimension("x", "space", 120, 32, shard_size_chunks=shard, unit="micrometer", scale=1e-3),
    ]
    arrays = [
        ArraySettings("sample/a", "float32", dims, CompressionSettings("blosc-zstd", 7, "bit"), "mean", 3),
        ArraySettings("sample/b", "int8", dims, CompressionSettings("zstd", -5), "max"),
        ArraySettings("sample/c", "uint64", dims, None),
    ]
    s3 = S3Settings(
        endpoint="http://127.0.0.1:9000",
        region="eu-west-2",
        profile="lab",
        part_size=8 << 20,
        max_attempts=7,
        connect_timeout_s=1.5,
        read_timeout_s=12,
        staging_dir="/var/lib/acqd/staging",
        keep_staged=True,
        upload_threads=2,
        upload_wait_s=5.5,
    )
    custom = {"operator": "ada", "nested": {"list": [1, 2.5, None, True], "text": "µm"}}
    return StreamSettings("s3://bucket/run/x.zarr", version, True, arrays, 3, s3, custom)


def fields_of(value: Any) -> set[str]:
    return {f.name for f in dataclasses.fields(value)}


def field_coverage(value: Any, covered: dict[str, bool]) -> dict[str, bool]:
    """For every field of ``value`` and of the settings inside it: whether some instance differs from the default."""
    for f in dataclasses.fields(value):
        field_value = getattr(value, f.name)
        default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
        name = f"{type(value).__name__}.{f.name}"
        covered[name] = covered.get(name, False) or field_value != default
        for inner in field_value if isinstance(field_value, tuple) else [field_value]:
            if dataclasses.is_dataclass(inner):
                field_coverage(inner, covered)
    return covered


def test_the_samples_set_every_field_of_every_settings_class() -> None:
    """A field added to a settings class must be set in the samples too, so its round trip is tested."""
    covered: dict[str, bool] = {}
    for version in (2, 3):
        field_coverage(every_field_set(version), covered)
    assert [name for name, yes in covered.items() if not yes] == []


@pytest.mark.parametrize("version", [2, 3])
def test_every_field_round_trips_exactly(version: int) -> None:
    settings = every_field_set(version)
    text = json.dumps(stream_settings_to_json(settings), allow_nan=False)
    assert stream_settings_from_json(json.loads(text)) == settings


def test_defaults_and_nones_round_trip() -> None:
    settings = StreamSettings("/data/run.zarr", arrays=[ArraySettings(dimensions=DIMS)])
    encoded = stream_settings_to_json(settings)
    assert (encoded["s3"], encoded["custom_metadata"], encoded["arrays"][0]["compression"]) == (None, None, None)
    assert stream_settings_from_json(json.loads(json.dumps(encoded))) == settings


def test_the_json_names_every_field_of_every_settings_class() -> None:
    settings = every_field_set(3)
    encoded = stream_settings_to_json(settings)
    assert set(encoded) == fields_of(settings)
    assert set(encoded["s3"]) == fields_of(S3Settings())
    array = encoded["arrays"][0]
    assert set(array) == fields_of(settings.arrays[0])
    assert set(array["dimensions"][0]) == fields_of(DIMS[0])
    assert set(array["compression"]) == fields_of(CompressionSettings())
    assert array["data_type"] == "float32"
    assert array["compression"] == {"codec": "blosc-zstd", "level": 7, "shuffle": "bit"}
    assert array["dimensions"][0]["type"] == "time"


def test_worker_config_round_trips_and_fits_a_welcome() -> None:
    settings = every_field_set(3)
    config = worker_config(settings, frame_table=False)
    assert config["format"] == 1
    SenderSettings("tcp://127.0.0.1:0", "run", config=config)  # the sender accepts it as its WELCOME config
    assert parse_worker_config(json.loads(json.dumps(config))) == WorkerConfig(settings, frame_table=False)
    assert parse_worker_config({"format": 1, "stream": config["stream"]}).frame_table is True


def base() -> dict[str, Any]:
    return stream_settings_to_json(StreamSettings("/data/run.zarr", arrays=[ArraySettings(dimensions=DIMS)]))


def with_value(path: list[Any], value: Any) -> dict[str, Any]:
    doc = base()
    node: Any = doc
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value
    return doc


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({**base(), "colour": "red"}, "stream has unknown keys ['colour']"),
        (with_value(["arrays", 0, "dimensions", 1, "chunk_size_px"], 0),
         "stream.arrays[0].dimensions[1]: chunk_size_px of dimension 'y' must be >= 1. Got 0 instead."),
        (with_value(["arrays", 0, "dimensions", 0, "depth"], 1), "stream.arrays[0].dimensions[0] has unknown keys"),
        (with_value(["arrays"], {"a": 1}), "stream.arrays must be a list."),
        (with_value(["arrays", 0], "cam"), "stream.arrays[0] must be a JSON object. Got \"cam\" instead."),
        (with_value(["overwrite"], "yes"), "stream.overwrite must be bool. Got 'yes' instead."),
        (with_value(["s3"], {"part_size": "big"}), "stream.s3.part_size must be int. Got 'big' instead."),
        (with_value(["s3"], {"endpoint": 5}), "stream.s3.endpoint must be str or null. Got 5 instead."),
        (with_value(["s3"], {"max_attempts": True}), "stream.s3.max_attempts must be int. Got True instead."),
        (with_value(["version"], 4), "stream: version must be one of 2, 3. Got 4 instead."),
        (with_value(["arrays", 0, "compression"], {"codec": "lzw"}), "stream.arrays[0].compression: compression.codec"),
        ({k: v for k, v in base().items() if k != "store_path"}, "stream is invalid: "),
        ([], "stream must be a JSON object. Got [] instead."),
    ],
)  # fmt: skip
def test_bad_json_is_refused_naming_the_field(doc: Any, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        stream_settings_from_json(doc)
    assert message in str(caught.value)


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"format": 2, "stream": {}}, "config.format must be 1. Got 2 instead."),
        ({"format": True, "stream": {}}, "config.format must be 1. Got True instead."),
        ({"stream": {}}, "config must have the keys ['format']"),
        ({"format": 1, "stream": base(), "frame_table": "yes"}, "frame_table must be true or false. Got 'yes'"),
        ({"format": 1, "stream": base(), "tables": True}, "config has unknown keys ['tables']"),
        ({"format": 1, "stream": []}, "config.stream must be a JSON object"),
    ],
)
def test_bad_worker_config_is_refused(config: Any, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_worker_config(config)
    assert message in str(caught.value)


def test_refuses_what_is_not_stream_settings() -> None:
    with pytest.raises(ConfigError, match=r"settings must be StreamSettings\. Got dict instead\."):
        stream_settings_to_json({})  # type: ignore[arg-type]
