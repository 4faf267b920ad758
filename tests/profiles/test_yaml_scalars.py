"""Scalars: what each plain or quoted scalar is to the strict loader, and what typed reads make of it."""

from __future__ import annotations

import pytest

from daemon.profile_fields import Checker, read_json, read_scalar
from daemon.strict_yaml import Kind, MapNode, Scalar, load_text


def scalar(text: str) -> Scalar:
    root = load_text(f"v: {text}\n", "s.yaml").root
    assert isinstance(root, MapNode)
    value = root.entries[0][1]
    assert isinstance(value, Scalar)
    return value


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("true", Kind.BOOL),
        ("false", Kind.BOOL),
        ("", Kind.NULL),
        ("~", Kind.NULL),
        ("null", Kind.NULL),
        ("0", Kind.INT),
        ("-12", Kind.INT),
        ("512", Kind.INT),
        ("0.5", Kind.FLOAT),
        ("-2.5", Kind.FLOAT),
        ("1.5e+3", Kind.FLOAT),
        ("y", Kind.STR),
        ("x", Kind.STR),
        ("demo.zarr", Kind.STR),
        ("blosc-lz4", Kind.STR),
        ("'no'", Kind.STR),
        ('"0755"', Kind.STR),
        ("'12:30'", Kind.STR),
        ("no", Kind.UNCLEAR),
        ("yes", Kind.UNCLEAR),
        ("on", Kind.UNCLEAR),
        ("Off", Kind.UNCLEAR),
        ("True", Kind.UNCLEAR),
        ("0755", Kind.UNCLEAR),
        ("12:30", Kind.UNCLEAR),
        ("1e3", Kind.UNCLEAR),
        ("1.0e3", Kind.UNCLEAR),
        ("1_000", Kind.UNCLEAR),
        ("0x1F", Kind.UNCLEAR),
        ("0o17", Kind.UNCLEAR),
        (".inf", Kind.UNCLEAR),
        (".nan", Kind.UNCLEAR),
        ("2024-05-01", Kind.UNCLEAR),
    ],
)
def test_each_scalar_has_one_unambiguous_kind(text: str, kind: Kind) -> None:
    assert scalar(text).kind is kind


@pytest.mark.parametrize(
    ("text", "note"),
    [
        ("no", "plain no is read as false by YAML 1.1 and as the string 'no' by YAML 1.2"),
        ("0755", "plain 0755 is read as 493 by YAML 1.1 and as 755 by YAML 1.2"),
        ("12:30", "plain 12:30 is read as 750 by YAML 1.1 and as the string '12:30' by YAML 1.2"),
        ("1e3", "plain 1e3 is read as the string '1e3' by YAML 1.1 and as 1000.0 by YAML 1.2"),
        ("True", "plain True is not in the strict form accepted here (it is true)"),
    ],
)
def test_an_unclear_scalar_says_how_the_two_yaml_versions_read_it(text: str, note: str) -> None:
    assert scalar(text).note == note


@pytest.mark.parametrize(
    ("text", "want", "value"),
    [
        ("true", "bool", True),
        ("false", "bool", False),
        ("7", "int", 7),
        ("7", "float", 7.0),
        ("7", "number", 7),
        ("2.5", "number", 2.5),
        ("'7'", "str", "7"),
        ("no", "bool", None),
        ("no", "str", None),
        ("'true'", "bool", None),
        ("2.5", "int", None),
        ("7", "str", None),
        ("9223372036854775807", "int", 2**63 - 1),
        ("9223372036854775808", "int", None),
        ("1.5e+400", "float", None),
    ],
)
def test_typed_reads_accept_only_their_kind(text: str, want: str, value: object) -> None:
    checker = Checker("s.yaml")
    assert read_scalar(checker, scalar(text), "v", want) == value
    assert (checker.issues == []) is (value is not None)


def test_a_number_where_a_string_is_wanted_asks_for_quotes() -> None:
    checker = Checker("s.yaml")
    read_scalar(checker, scalar("23041234"), "serial_number", "str")
    assert (
        str(checker.issues[0])
        == "s.yaml:1: serial_number: must be a string; quote it ('23041234'). Got 23041234 instead."
    )


def test_free_form_json_keeps_structure_and_refuses_unclear_scalars() -> None:
    root = load_text("a: {b: [1, 2.5, true, null, 'x']}\nc: no\n", "m.yaml").root
    assert root is not None
    checker = Checker("m.yaml")
    value = read_json(checker, root, "metadata")
    assert value == {"a": {"b": [1, 2.5, True, None, "x"]}, "c": None}
    assert [(i.line, i.path) for i in checker.issues] == [(2, "metadata.c")]


def test_duplicate_keys_are_reported_at_the_second_with_the_first_line() -> None:
    doc = load_text("a:\n  b: 1\n  c: 2\n  b: 3\n", "d.yaml")
    assert [str(issue) for issue in doc.issues] == ["d.yaml:4: a.b: duplicate key (first at line 2)"]
