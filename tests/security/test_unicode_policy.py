"""What the Unicode rules leave alone and how they show a trick (the refusals themselves are corpus files under
``tests/profiles/bad/``: ``unicode_*``, ``control_*``, ``surrogate_*``).

Free-form metadata keeps real-world text (right-to-left marks, emoji joiners, decomposed accents, tabs, block
scalars), a CRLF file loads, and a refused value is shown escaped, also in the daemon's JSON journal line.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from daemon.profile import load_profile, parse_document, parse_profile
from daemon.profile_overrides import apply_overrides
from daemon.strict_yaml import DocumentError, escaped, join_path, load_text

BASE = """\
cameras:
  - name: cam
    driver: simulated
    settings: {height: 64, width: 64, dtype: uint16}
    dimensions:
      - {name: t, type: time, array_size_px: 0, chunk_size_px: 8}
      - {name: y, type: space, array_size_px: 64, chunk_size_px: 32}
      - {name: x, type: space, array_size_px: 64, chunk_size_px: 32}
acquisition: {frames: 10}
storage: {store: STORE, version: 3}
"""
FREE_TEXT = "\u0645\u0631\u062d\u0628\u0627\u200f 42 \U0001f469\u200d\U0001f52c cafe\u0301\ttab"


def test_free_form_metadata_keeps_real_world_text_and_crlf_files_load(tmp_path: Path) -> None:
    text = BASE.replace("STORE", "ok.zarr") + f'metadata:\n  note: "{FREE_TEXT}"\n  block: |\n    one\n    two\n'
    path = tmp_path / "crlf.yaml"
    path.write_bytes(text.replace("\n", "\r\n").encode())
    profile = load_profile(path, tmp_path / "data")
    assert profile.stream.custom_metadata == {"note": FREE_TEXT, "block": "one\ntwo\n"}
    assert profile.stream.store_path == str((tmp_path / "data" / "ok.zarr").resolve())


def test_non_ascii_letters_in_nfc_are_a_valid_store_path(tmp_path: Path) -> None:
    profile = parse_profile(BASE.replace("STORE", "caf\u00e9/\u00b5m-\u65e5\u672c.zarr"), data_root=tmp_path / "data")
    assert profile.stream.store_path.endswith("/caf\u00e9/\u00b5m-\u65e5\u672c.zarr")


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("run\u202e.zarr", r"'run\u202e.zarr'"),
        ("e\u0301", r"'e\u0301'"),
        ("a\u00a0b", r"'a\xa0b'"),
        ("\uff0e\uff0e\u2215", r"'\uff0e\uff0e\u2215'"),
        ("it's a\\b", r"'it\'s a\\b'"),
        ("caf\u00e9 \U0001f52c", "'caf\u00e9 \U0001f52c'"),
    ],
)
def test_escaped_shows_what_hides_or_fakes_text(text: str, shown: str) -> None:
    assert escaped(text) == shown


def test_a_key_path_never_carries_a_raw_control() -> None:
    assert join_path("metadata", "a\u202eb") == r"metadata.'a\u202eb'"
    assert join_path("", "plain") == "plain"


def test_a_long_value_is_shown_around_the_trick_only(tmp_path: Path) -> None:
    long = "a" * 5000 + "\u202e" + "b" * 5000
    with pytest.raises(DocumentError) as caught:
        parse_profile(BASE.replace("STORE", long), data_root=tmp_path / "data")
    (issue,) = caught.value.issues
    assert "(at index 5000)" in issue.message
    assert "..." + escaped("a" * 32 + "\u202e" + "b" * 31) + "..." in issue.message
    assert len(issue.message) < 300


def test_the_json_journal_line_shows_the_escape_not_the_character(tmp_path: Path) -> None:
    with pytest.raises(DocumentError) as caught:
        parse_profile(BASE.replace("STORE", "run\u202e.zarr"), data_root=tmp_path / "data")
    line = json.dumps({"event": "profile_invalid", "error": str(caught.value)}, ensure_ascii=False)
    assert "\u202e" not in line
    assert r"run\\u202e.zarr" in line


@pytest.mark.parametrize(
    ("overrides", "path", "fragment"),
    [
        ({"storage.store": "\uff0e\uff0e/x.zarr"}, "storage.store", r"U+FF0E (FULLWIDTH FULL STOP) at index 0"),
        ({"storage.store": "cafe\u0301.zarr"}, "storage.store", "must be in Unicode NFC form"),
        ({"cameras[0].dimensions[1].name": "y\u202e"}, "cameras[0].dimensions[1].name", r"Got 'y\u202e' instead"),
        ({"cameras[0].output_key": "sam\u200bple"}, "cameras[0].output_key", "U+200B (ZERO WIDTH SPACE)"),
        ({"metadata.note": "\x1b[2J"}, "metadata.note", r"Got '\x1b[2J' instead"),
        ({"metadata": {"a\u202eb": 1}}, r"metadata.'a\u202eb'", "key must not contain U+202E"),
    ],
)
def test_overrides_are_held_to_the_same_rules_as_the_file(
    tmp_path: Path, overrides: dict[str, object], path: str, fragment: str
) -> None:
    doc = apply_overrides(load_text(BASE.replace("STORE", "ok.zarr"), "over.yaml"), overrides)
    with pytest.raises(DocumentError) as caught:
        parse_document(doc, tmp_path / "data")
    issues = [issue for issue in caught.value.issues if issue.path == path]
    assert issues, str(caught.value)
    assert fragment in issues[0].message
