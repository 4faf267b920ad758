"""Overrides: dotted field paths applied to a profile document before validation, validated like the file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from daemon.errors import ConfigError
from daemon.profile import parse_document
from daemon.profile_overrides import apply_overrides, parse_override_path
from daemon.strict_yaml import DocumentError, load_text

PROFILE = """\
cameras:
  - name: sim
    driver: simulated
    settings: {height: 64, width: 48, dtype: uint8}
    dimensions:
      - {name: t, type: time, array_size_px: 0, chunk_size_px: 8}
      - {name: y, type: space, array_size_px: 64, chunk_size_px: 64}
      - {name: x, type: space, array_size_px: 48, chunk_size_px: 48}
acquisition:
  frames: 20
storage:
  store: run.zarr
  version: 3
metadata:
"""


def build(tmp_path: Path, overrides: dict[str, Any], text: str = PROFILE) -> Any:
    doc = apply_overrides(load_text(text, "p.yaml"), overrides)
    return parse_document(doc, tmp_path)


@pytest.mark.parametrize(
    ("path", "parts"),
    [
        ("acquisition.frames", ("acquisition", "frames")),
        ("cameras[0].settings.height", ("cameras", 0, "settings", "height")),
        ("cameras.0.settings.height", ("cameras", 0, "settings", "height")),
        ("cameras[0].dimensions[2].chunk_size_px", ("cameras", 0, "dimensions", 2, "chunk_size_px")),
    ],
)
def test_paths_parse_like_error_paths(path: str, parts: tuple[Any, ...]) -> None:
    assert parse_override_path(path) == parts


@pytest.mark.parametrize("path", ["", ".", "a..b", "[0]", "0.frames", "a[x]", "a]", "acquisition.", "a[99999999]"])
def test_malformed_paths_are_refused(path: str) -> None:
    with pytest.raises(ConfigError, match="override"):
        parse_override_path(path)


def test_values_replace_fields_and_create_missing_ones(tmp_path: Path) -> None:
    profile = build(
        tmp_path,
        {
            "acquisition.frames": 7,
            "acquisition.queue_bytes": "2 MiB",
            "storage.store": "other.zarr",
            "storage.compression": {"codec": "zstd", "level": 3},
            "metadata.operator": "ann",
        },
    )
    assert profile.acquisition.frames == 7
    assert profile.acquisition.queue_bytes == 2 * 1024 * 1024
    assert profile.stream.store_path == str((tmp_path / "other.zarr").resolve())
    assert profile.stream.arrays[0].compression is not None
    assert profile.stream.custom_metadata == {"operator": "ann"}


def test_null_removes_a_value_so_the_stop_condition_can_change(tmp_path: Path) -> None:
    profile = build(tmp_path, {"acquisition.frames": None, "acquisition.duration_s": 1.5})
    assert profile.acquisition.frames is None
    assert profile.acquisition.duration_s == 1.5


def test_list_items_are_reached_by_index(tmp_path: Path) -> None:
    overrides = {
        "cameras[0].settings.height": 32,
        "cameras[0].dimensions[1].array_size_px": 32,
        "cameras[0].dimensions[1].chunk_size_px": 16,
    }
    profile = build(tmp_path, overrides)
    assert profile.cameras[0].settings.height == 32
    assert profile.stream.arrays[0].dimensions[1].chunk_size_px == 16


def test_an_overridden_value_is_validated_like_the_file(tmp_path: Path) -> None:
    with pytest.raises(DocumentError) as caught:
        build(tmp_path, {"acquisition.frames": "10", "acquisition.framez": 3})
    issues = {(issue.path, issue.line) for issue in caught.value.issues}
    assert ("acquisition.frames", 10) in issues  # a JSON string is not a number, as in the file
    assert any(path == "acquisition.framez" for path, _ in issues)
    assert "Did you mean 'frames'?" in str(caught.value)


def test_a_frame_shape_that_no_longer_matches_is_reported(tmp_path: Path) -> None:
    with pytest.raises(DocumentError, match="height"):
        build(tmp_path, {"cameras[0].settings.height": 32})


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"cameras[3].name": "x"}, "index 3 is not one"),
        ({"acquisition.frames.x": 1}, "cannot step into a value"),
        ({"storage[0]": 1}, "cannot step into a mapping"),
        ({"nothing[0].x": 1}, "no list 'nothing'"),
        ({"metadata.x": {1: 2}}, "keys must be strings"),
        ({"metadata.x": object()}, "must be JSON"),
    ],
)
def test_paths_that_do_not_fit_the_document_are_refused(
    tmp_path: Path, overrides: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        build(tmp_path, overrides)


def test_the_original_document_is_not_changed(tmp_path: Path) -> None:
    doc = load_text(PROFILE, "p.yaml")
    apply_overrides(doc, {"acquisition.frames": 3})
    assert parse_document(doc, tmp_path).acquisition.frames == 20


def test_deeply_nested_values_are_refused(tmp_path: Path) -> None:
    value: Any = 1
    for _ in range(40):
        value = [value]
    with pytest.raises(ConfigError, match="nested deeper"):
        build(tmp_path, {"metadata.deep": value})
