"""Field checking for strict YAML documents: typed reads with located errors, and settings built from type hints.

A :class:`Checker` collects :class:`~daemon.strict_yaml.Issue` s for one document, so that one pass reports every
problem it can. A :class:`MapReader` reads one mapping: it refuses unknown keys up front (with a "did you mean"),
then hands out typed values (``integer``, ``number``, ``boolean``, ``string``, ...) that are ``None`` when absent
or invalid (the issue is recorded).

Design notes:
- Types are checked here, values are not: ranges and choices are the settings classes' rules. :func:`build`
  turns a mapping into a settings dataclass from the dataclass's own type hints, calls it, and turns its
  :class:`~daemon.errors.ConfigError` into an issue at the field its message names (:func:`locate`), so the
  rules live in one place and every error still has a file, a line and a field path.
- A scalar's :class:`~daemon.strict_yaml.Kind` decides what it may be: a plain ``no`` is neither a string nor a
  bool here; a quoted ``'5'`` is not a number.
- Numbers are bounded (integers within int64, floats finite) before Python converts them.
- A typed string field (names, keys, paths, choices; not free-form metadata) is refused when it holds invisible
  characters or is not in Unicode NFC form (:func:`daemon.strict_yaml.text_problem`): two spellings that look
  identical must not name two different things.
"""

from __future__ import annotations

import dataclasses
import difflib
import enum
import math
import re
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from daemon.errors import ConfigError
from daemon.strict_yaml import Issue, Kind, MapNode, Node, Scalar, SeqNode, hiding_problem, join_path, text_problem

_T = TypeVar("_T")

INT_LIMIT = 2**63
_MAX_INT_DIGITS = 19

JSON = None | bool | int | float | str | list["JSON"] | dict[str, "JSON"]


class Checker:
    """Collects the issues of one document."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.issues: list[Issue] = []

    def add(self, line: int, path: str, message: str) -> None:
        """Record an issue (once: the same store-wide error reached through several cameras is one issue)."""
        issue = Issue(self.file, line, path, message)
        if issue not in self.issues:
            self.issues.append(issue)

    def mark(self) -> int:
        """A position to ask :meth:`clean_since` about."""
        return len(self.issues)

    def clean_since(self, mark: int) -> bool:
        return len(self.issues) == mark


def describe(node: Node) -> str:
    """What a node is, for "Got ... instead." messages."""
    if isinstance(node, MapNode):
        return "a mapping"
    if isinstance(node, SeqNode):
        return "a list"
    if node.kind is Kind.STR:
        return f"the string {node.text!r}" if node.quoted else repr(node.text)
    return "null" if node.kind is Kind.NULL else node.text


def _got(node: Node) -> str:
    if isinstance(node, Scalar) and node.kind is Kind.UNCLEAR:
        return f"Got {node.text} instead: {node.note}."
    return f"Got {describe(node)} instead."


def _unbounded(text: str) -> bool:
    return len(text.lstrip("+-")) > _MAX_INT_DIGITS or not -INT_LIMIT <= int(text) < INT_LIMIT


def _short(text: str) -> str:
    return text if len(text) <= 24 else text[:20] + "..."


def read_scalar(checker: Checker, node: Node, path: str, want: str) -> Any:
    """Read a scalar of type ``want`` (``bool``, ``int``, ``float``, ``number`` (int or float as written), ``str``,
    ``scalar`` (any)); ``None`` if invalid (an issue is recorded)."""
    if isinstance(node, Scalar):
        kind = node.kind
        if kind is Kind.INT and want in ("int", "float", "number", "scalar"):
            if _unbounded(node.text):
                checker.add(node.line, path, f"must be within +-2**63. Got {_short(node.text)} instead.")
                return None
            return int(node.text) if want != "float" else float(node.text)
        if kind is Kind.FLOAT and want in ("float", "number", "scalar"):
            value = float(node.text)
            if math.isfinite(value):
                return value
            checker.add(node.line, path, f"must be a finite number. Got {_short(node.text)} instead.")
            return None
        if kind is Kind.STR and (hidden := hiding_problem(node.text)) is not None:
            checker.add(node.line, path, hidden)  # one issue with the document's own (values given as overrides)
        elif kind is Kind.STR and want == "str" and (problem := text_problem(node.text)) is not None:
            checker.add(node.line, path, problem)
            return None
        if (kind is Kind.BOOL and want in ("bool", "scalar")) or (kind is Kind.STR and want in ("str", "scalar")):
            return node.text == "true" if kind is Kind.BOOL else node.text
    checker.add(node.line, path, _expected(want, node))
    return None


def _expected(want: str, node: Node) -> str:
    what = {
        "bool": "must be true or false",
        "int": "must be an integer",
        "float": "must be a number",
        "number": "must be a number",
        "str": "must be a string",
        "scalar": "must be a string, a number or true/false",
    }[want]
    if want == "str" and isinstance(node, Scalar) and node.kind in (Kind.INT, Kind.FLOAT, Kind.BOOL, Kind.UNCLEAR):
        return f"{what}; quote it ('{node.text}'). {_got(node)}"
    return f"{what}. {_got(node)}"


_SECRET_WORDS = ("secret", "password", "token", "credential", "access_key")


def unknown_key_message(key: str, known: Iterable[str]) -> str:
    if any(word in key.lower() for word in _SECRET_WORDS):
        return (
            "unknown key: credentials are never part of a profile. Give them through the environment, "
            "the shared credentials file (and s3.profile) or an instance role."
        )
    accepted = sorted(known)
    close = difflib.get_close_matches(key, accepted, n=1, cutoff=0.6)
    hint = f" Did you mean '{close[0]}'?" if close else ""
    return f"unknown key.{hint} Accepted keys: {', '.join(accepted)}."


class MapReader:
    """Typed access to one mapping. Unknown keys are reported when the reader is made."""

    def __init__(self, checker: Checker, node: MapNode, path: str, known: Iterable[str]) -> None:
        self.checker = checker
        self.node = node
        self.path = path
        self.known = tuple(known)
        self.values: dict[str, Node] = {}
        self.lines: dict[str, int] = {}
        for key, value in node.entries:
            if key.text in self.known:
                self.values[key.text] = value
                self.lines[key.text] = key.line
            else:
                checker.add(key.line, self.at(key.text), unknown_key_message(key.text, self.known))

    def at(self, key: str | int) -> str:
        return join_path(self.path, key)

    def line(self, key: str) -> int:
        """The line of ``key``, or of the mapping when the key is absent."""
        return self.lines.get(key, self.node.line)

    def place(self, key: str | None = None) -> Place:
        """The place of ``key`` (its line even when absent: then the mapping's), or of the mapping itself."""
        if key is None:
            return Place(self.node.line, self.path)
        return Place(self.line(key), self.at(key), key)

    def place_of(self, message: str) -> Place:
        """The place of the key a settings error message names first, else the mapping's."""
        return place_by_words(message, {key: self.place(key) for key in self.known}, self.place())

    def has(self, key: str) -> bool:
        value = self.values.get(key)
        return value is not None and not (isinstance(value, Scalar) and value.kind is Kind.NULL)

    def node_of(self, key: str, required: bool = False) -> Node | None:
        """The value node of ``key``; ``None`` when absent or null (an issue if ``required``)."""
        if self.has(key):
            return self.values[key]
        if required:
            self.checker.add(self.line(key), self.at(key), "is required.")
        return None

    def _scalar(self, key: str, want: str, required: bool) -> Any:
        node = self.node_of(key, required)
        return None if node is None else read_scalar(self.checker, node, self.at(key), want)

    def integer(self, key: str, required: bool = False) -> int | None:
        value: int | None = self._scalar(key, "int", required)
        return value

    def number(self, key: str, required: bool = False) -> float | None:
        value: float | None = self._scalar(key, "float", required)
        return value

    def boolean(self, key: str, required: bool = False) -> bool | None:
        value: bool | None = self._scalar(key, "bool", required)
        return value

    def string(self, key: str, required: bool = False) -> str | None:
        value: str | None = self._scalar(key, "str", required)
        return value

    def mapping(self, key: str, known: Iterable[str], required: bool = False) -> MapReader | None:
        node = self.node_of(key, required)
        if node is None:
            return None
        if not isinstance(node, MapNode):
            self.checker.add(node.line, self.at(key), f"must be a mapping. {_got(node)}")
            return None
        return MapReader(self.checker, node, self.at(key), known)

    def sequence(self, key: str, required: bool = False) -> list[tuple[Node, str]]:
        """The items of a list with their paths; ``[]`` when absent or not a list (an issue)."""
        node = self.node_of(key, required)
        if node is None:
            return []
        if not isinstance(node, SeqNode):
            self.checker.add(node.line, self.at(key), f"must be a list. {_got(node)}")
            return []
        return [(item, join_path(self.at(key), i)) for i, item in enumerate(node.items)]


def read_json(checker: Checker, node: Node, path: str) -> JSON:
    """A JSON value (free-form metadata): mappings with string keys, lists, and unambiguous scalars."""
    if isinstance(node, MapNode):
        return {key.text: read_json(checker, value, check_key(checker, key, path)) for key, value in node.entries}
    if isinstance(node, SeqNode):
        return [read_json(checker, item, join_path(path, i)) for i, item in enumerate(node.items)]
    if node.kind is Kind.NULL:
        return None
    value: JSON = read_scalar(checker, node, path, "scalar")
    return value


def check_key(checker: Checker, key: Scalar, parent: str) -> str:
    """The path of a free-form key; an issue when it hides text (as the document level says for keys it read)."""
    path = join_path(parent, key.text)
    if (problem := hiding_problem(key.text)) is not None:
        checker.add(key.line, path, f"key {problem}")
    return path


# --- settings dataclasses from their type hints -----------------------------------------------------------------


def _scalar_want(hint: Any) -> str | None:
    """The scalar reader for a type that YAML gives as one scalar (str-like enums and Literals read as strings)."""
    if hint in (bool, int, float, str):
        return str(hint.__name__)
    if typing.get_origin(hint) is typing.Literal:
        return "str"
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return "int" if issubclass(hint, int) else "str"
    return None


def _union_want(options: tuple[Any, ...]) -> str | None:
    """One reader for a union of scalar types; types YAML cannot give (numpy dtypes, classes) are ignored."""
    wants = {want for want in map(_scalar_want, options) if want is not None}
    if not wants:
        return None
    if len(wants) == 1:
        return wants.pop()
    return "number" if wants == {"int", "float"} else "scalar"


def read_typed(checker: Checker, node: Node, hint: Any, path: str) -> Any:
    """Read ``node`` as a value of the type ``hint`` (scalars, Literal, Enum, unions, tuples, mappings,
    dataclasses). Returns ``None`` when invalid (an issue is recorded)."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        options = tuple(arg for arg in typing.get_args(hint) if arg is not type(None))
        if len(options) == 1:
            return read_typed(checker, node, options[0], path)
        want = _union_want(options)
        if want is None:
            raise TypeError(f"no YAML reader for the type {hint!r} at {path}")
        return read_scalar(checker, node, path, want)
    want = _scalar_want(hint)
    if want is not None:
        return read_scalar(checker, node, path, want)
    origin = typing.get_origin(hint)
    if origin is tuple:
        return _read_tuple(checker, node, typing.get_args(hint)[0], path)
    if origin in (Mapping, dict):
        return _read_mapping(checker, node, typing.get_args(hint)[1], path)
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        if not isinstance(node, MapNode):
            checker.add(node.line, path, f"must be a mapping. {_got(node)}")
            return None
        return build(checker, MapReader(checker, node, path, field_names(hint)), hint)
    raise TypeError(f"no YAML reader for the type {hint!r} at {path}")


def _read_tuple(checker: Checker, node: Node, item_hint: Any, path: str) -> tuple[Any, ...] | None:
    if not isinstance(node, SeqNode):
        checker.add(node.line, path, f"must be a list. {_got(node)}")
        return None
    mark = checker.mark()
    items = tuple(read_typed(checker, item, item_hint, join_path(path, i)) for i, item in enumerate(node.items))
    return items if checker.clean_since(mark) else None


def _read_mapping(checker: Checker, node: Node, value_hint: Any, path: str) -> dict[str, Any] | None:
    if not isinstance(node, MapNode):
        checker.add(node.line, path, f"must be a mapping. {_got(node)}")
        return None
    mark = checker.mark()
    result = {
        key.text: read_typed(checker, item, value_hint, check_key(checker, key, path)) for key, item in node.entries
    }
    return result if checker.clean_since(mark) else None


def _is_required(f: dataclasses.Field[Any]) -> bool:
    return f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING


def field_names(cls: type) -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(cls))


def build(
    checker: Checker,
    reader: MapReader,
    cls: type,
    keys: Iterable[str] | None = None,
    where: Callable[[str], Place] | None = None,
    **extra: Any,
) -> Any:
    """``cls(**fields)`` from the keys of ``reader`` that name fields of ``cls`` (``keys`` to restrict them),
    plus ``extra`` keyword arguments. Returns ``None`` when a field or the constructor fails (issues recorded);
    a constructor error goes to ``where(message)``, by default the field its message names."""
    hints = typing.get_type_hints(cls)
    mark = checker.mark()
    kwargs: dict[str, Any] = dict(extra)
    required = {f.name for f in dataclasses.fields(cls) if _is_required(f)}
    for name in keys if keys is not None else field_names(cls):
        node = reader.node_of(name, required=name in required and name not in extra)
        if node is not None:
            kwargs[name] = read_typed(checker, node, hints[name], reader.at(name))
    if not checker.clean_since(mark):
        return None
    return construct(checker, lambda: cls(**kwargs), where or reader.place_of)


# --- settings errors to places ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Place:
    """Where an error belongs: a line, a field path, and the word that names the field in messages."""

    line: int
    path: str
    word: str = ""


def construct(checker: Checker, make: Callable[[], _T], where: Callable[[str], Place]) -> _T | None:
    """``make()``; a ConfigError becomes an issue at ``where(message)``, the message without its subject."""
    try:
        return make()
    except ConfigError as exc:
        message = str(exc)
        place = where(message)
        checker.add(place.line, place.path, with_suggestion(without_subject(message, place.word)))
        return None


_CHOICES = re.compile(r"one of (?P<choices>[^.:]+?)[.:] .*Got (?P<got>'[^']*'|\S+) instead")


def with_suggestion(message: str) -> str:
    """Add "Did you mean 'x'?" to a "must be one of a, b, c. Got 'y' instead." message when one is close."""
    found = _CHOICES.search(message)
    if not found:
        return message
    choices = [choice.strip(" '") for choice in found["choices"].replace(" or ", ", ").split(",")]
    close = difflib.get_close_matches(found["got"].strip("'"), choices, n=1)
    return f"{message} Did you mean '{close[0]}'?" if close else message


def without_subject(message: str, word: str) -> str:
    """Drop the field a message starts with when the path already says it:
    ``"chunk_size_px of dimension 'y' must be >= 1..."`` at ``chunk_size_px`` -> ``"must be >= 1..."``."""
    if not word:
        return message
    token, _, rest = message.partition(" ")
    if not rest or not (token == word or token.endswith("." + word)):
        return message
    return _OF_DIMENSION.sub("", rest, count=1)


_OF_DIMENSION = re.compile(r"^of dimension '[^']*' ")


def place_by_words(message: str, places: Mapping[str, Place], fallback: Place) -> Place:
    """The place whose word appears first in ``message`` (the longest word wins a tie), else ``fallback``."""
    best: tuple[int, int, Place] | None = None
    for word, place in places.items():
        found = re.search(rf"(?<![A-Za-z0-9_]){re.escape(word)}(?![A-Za-z0-9_])", message)
        if found and (best is None or (found.start(), -len(word)) < (best[0], best[1])):
            best = (found.start(), -len(word), dataclasses.replace(place, word=word))
    return best[2] if best else fallback
