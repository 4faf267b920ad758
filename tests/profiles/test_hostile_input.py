"""Hostile input: what a profile loader must refuse quickly and without side effects."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from daemon.profile import load_profile
from daemon.strict_yaml import MAX_BYTES, MAX_DEPTH, DocumentError, load_file, load_text

BILLION_LAUGHS = """\
a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]
b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]
c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]
d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]
e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]
f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]
g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]
h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g]
i: &i [*h, *h, *h, *h, *h, *h, *h, *h, *h]
"""


def messages(exc: DocumentError) -> list[str]:
    return [f"{issue.line} {issue.path}: {issue.message}" for issue in exc.issues]


def test_an_alias_bomb_is_refused_without_expanding_it() -> None:
    start = time.perf_counter()
    doc = load_text(BILLION_LAUGHS, "bomb.yaml")
    elapsed = time.perf_counter() - start
    anchors = [issue for issue in doc.issues if "anchors are not allowed" in issue.message]
    aliases = [issue for issue in doc.issues if "aliases are not allowed" in issue.message]
    assert len(anchors) == 9
    assert len(aliases) == 8 * 9
    assert (anchors[0].line, anchors[0].path) == (1, "a")
    assert elapsed < 2.0


def test_an_alias_bomb_in_a_profile_fails_the_profile(tmp_path: Path) -> None:
    path = tmp_path / "bomb.yaml"
    path.write_text(BILLION_LAUGHS)
    with pytest.raises(DocumentError) as caught:
        load_profile(path, tmp_path)
    assert "1 a: anchors are not allowed (&a)" in messages(caught.value)


def test_deep_nesting_is_refused_before_python_recursion_runs_out() -> None:
    depth = 50_000
    with pytest.raises(DocumentError) as caught:
        load_text("[" * depth + "]" * depth, "deep.yaml")
    assert messages(caught.value) == [f"1 : invalid YAML: nesting deeper than {MAX_DEPTH} levels"]


def test_python_tags_construct_nothing(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    text = f'metadata: !!python/object/apply:os.system ["touch {marker}"]\n'
    doc = load_text(text, "tag.yaml")
    assert [(i.line, i.path) for i in doc.issues] == [(1, "metadata")]
    assert "python tags are not allowed" in doc.issues[0].message
    assert not marker.exists()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a: 1\nb: \x00\n", "2 : NUL bytes are not allowed"),
        ("a: 1\nb: \x07\n", "2 : character #x0007 is not allowed (special characters are not allowed)"),
        ("a: !custom 1\n", "1 a: tags are not allowed (!custom)"),
        ("a: !!str 1\n", "1 a: tags are not allowed (tag:yaml.org,2002:str)"),
    ],
    ids=["nul", "control-character", "custom-tag", "standard-tag"],
)
def test_unwanted_characters_and_tags_are_refused(text: str, expected: str) -> None:
    assert issues_of(text) == [expected]


def issues_of(text: str) -> list[str]:
    """The issues of ``text``, whether they stop the load (raised) or are recorded on the document."""
    try:
        doc = load_text(text, "x.yaml")
    except DocumentError as exc:
        return messages(exc)
    return messages(DocumentError(doc.issues))


def test_non_utf8_bytes_are_refused_with_their_line(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes("a: 1\nname: caf\u00e9\n".encode("latin-1"))
    with pytest.raises(DocumentError) as caught:
        load_file(path)
    assert messages(caught.value) == ["2 : not valid UTF-8: byte 0xe9 at offset 14"]


def test_a_utf8_byte_order_mark_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "bom.yaml"
    path.write_bytes(b"\xef\xbb\xbfa: 1\n")
    doc = load_file(path)
    assert doc.issues == []
    assert doc.root is not None


def test_a_file_over_the_size_limit_is_refused_without_parsing(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    path.write_bytes(b"# " + b"x" * MAX_BYTES + b"\n")
    with pytest.raises(DocumentError) as caught:
        load_file(path)
    assert messages(caught.value) == [f"1 : the file is larger than {MAX_BYTES} bytes"]
    small = tmp_path / "small.yaml"
    small.write_text("a: 1\n" * 10)
    with pytest.raises(DocumentError, match="larger than 20 bytes"):
        load_file(small, max_bytes=20)


def test_a_huge_integer_is_refused_before_conversion(tmp_path: Path) -> None:
    doc_text = "acquisition: {frames: " + "9" * 10_000 + "}\n"
    path = tmp_path / "huge.yaml"
    path.write_text(doc_text)
    with pytest.raises(DocumentError) as caught:
        load_profile(path, tmp_path)
    found = [m for m in messages(caught.value) if m.startswith("1 acquisition.frames:")]
    assert found == ["1 acquisition.frames: must be within +-2**63. Got 99999999999999999999... instead."]


def test_a_missing_file_is_an_error_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "absent.yaml"
    with pytest.raises(DocumentError) as caught:
        load_profile(path, tmp_path)
    assert str(caught.value).startswith(f"{path}:1: cannot read the file")


def test_an_empty_file_is_not_a_profile(tmp_path: Path) -> None:
    path = tmp_path / "empty.yaml"
    path.write_text("# nothing\n")
    with pytest.raises(DocumentError) as caught:
        load_profile(path, tmp_path)
    assert messages(caught.value) == [
        "1 : a profile must be a mapping with the keys cameras, acquisition, storage, metadata."
    ]
