"""Strict YAML: load a document into located nodes, refusing what makes YAML surprising or dangerous.

The result is a tree of :class:`Scalar`, :class:`MapNode` and :class:`SeqNode`, each with its 1-based line. Nothing
is converted to Python values here: a scalar keeps its text, whether it was quoted, and what kind of value it is
unambiguously (:class:`Kind`). The schema layer (``daemon/profile_fields.py``) decides what each field accepts.

Design notes:
- Parsing is ``yaml.safe_load``'s (a ``SafeLoader`` subclass, pure-Python so every node has a mark), but only the
  composer runs: no constructor, so no tag can ever build an object.
- Refused, each as an :class:`Issue` naming the file, line and key path: explicit tags (``!!python/...`` and any
  other), anchors and aliases (so no alias bombs), merge keys, duplicate keys, non-string keys, several documents,
  nesting deeper than :data:`MAX_DEPTH`, NUL and other control characters, non-UTF-8 bytes, files larger than
  :data:`MAX_BYTES`. Syntax errors stop the load; the other issues are collected and reported together.
- Characters that hide or fake text are refused in every key and scalar, also when written as escapes in a quoted
  string (``"\\u202e"``): C0 controls but tab and line feed, DEL, C1 controls (NEL included), lone surrogates (an
  undecodable byte smuggled as ``"\\udc80"``), the bidirectional embeddings, overrides and isolates (U+202A-U+202E,
  U+2066-U+2069) and U+FEFF past the start of the file. Messages show the value through :func:`escaped`, so the
  trick is visible as ``\\u202e`` in the terminal and the journal. Field paths escape such keys too
  (:func:`join_path`).
- Keys are compared after Unicode NFC normalisation: ``café`` written precomposed and decomposed (``e`` + U+0301)
  look identical, so the second is a duplicate key. Typed string fields (names, keys, paths; not free-form
  metadata) must also hold no invisible characters and be NFC (:func:`text_problem`, used by
  ``daemon/profile_fields.py``).
- YAML 1.1 (PyYAML) and YAML 1.2 read some plain scalars differently: ``no``/``on`` (bool or string), ``0755``
  (octal or decimal), ``12:30`` (sexagesimal or string), ``1e3`` (string or float), ``1_000``, dates. Such a scalar
  is :attr:`Kind.UNCLEAR` and carries a note saying both readings; a field that wants a value refuses it, and the
  user quotes it or writes the value plainly. Accepted plain forms: ``true``/``false``, ``null``/``~``/empty,
  decimal integers without leading zeros, decimal floats with a dot (exponent with a sign: ``1.5e+3``).
"""

from __future__ import annotations

import enum
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from daemon.errors import ConfigError

MAX_BYTES = 1024 * 1024
MAX_DEPTH = 32

_STR_TAG = "tag:yaml.org,2002:str"
_MERGE_TAG = "tag:yaml.org,2002:merge"
_NULLS = frozenset({"", "~", "null", "Null", "NULL"})
_INT = re.compile(r"[-+]?(?:0|[1-9][0-9]*)")
_FLOAT = re.compile(r"[-+]?(?:0|[1-9][0-9]*)\.[0-9]+(?:[eE][-+][0-9]+)?")
# YAML 1.2 core schema, for saying how a 1.2 reader would take a plain scalar.
_CORE_BOOL = re.compile(r"true|True|TRUE|false|False|FALSE")
_CORE_INT = re.compile(r"[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+")
_CORE_FLOAT = re.compile(
    r"[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN)"
)


# Refused in every scalar and key: C0 (but tab, line feed), DEL, C1, lone surrogates, bidi controls, U+FEFF.
_HIDING = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff\u202a-\u202e\u2066-\u2069\ufeff]")
LOOK_ALIKES = frozenset("\uff0e\u2024\u2025\u2026\ufe52\uff0f\u2215\u2044\u29f8\uff3c\u2216\u29f5\u29f9\ufe68")


def describe_char(char: str) -> str:
    """``U+202E (RIGHT-TO-LEFT OVERRIDE)``; control characters have no name, their category says what they are."""
    code = ord(char)
    name = unicodedata.name(char, "")
    if not name:
        category = unicodedata.category(char)
        name = {"Cc": "control character", "Cs": "lone surrogate", "Co": "private use"}.get(category, category)
        if category == "Cs" and 0xDC80 <= code <= 0xDCFF:
            name += f", the undecodable byte 0x{code - 0xDC00:02x}"
    return f"U+{code:04X} ({name})"


def escaped(text: str) -> str:
    """``text`` quoted, with what could hide or fake text as an escape: non-printable characters, combining marks,
    separators other than the space, and look-alikes of '.', '/' and '\\' (``'run\\u202e.zarr'``)."""
    out = []
    for char in text:
        code = ord(char)
        if char in ("'", "\\"):
            out.append("\\" + char)
        elif (
            char.isprintable()
            and char not in LOOK_ALIKES
            and (char == " " or unicodedata.category(char)[0] not in "MZ")
        ):
            out.append(char)
        elif code <= 0xFF:
            out.append(f"\\x{code:02x}")
        else:
            out.append(f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}")
    return "'" + "".join(out) + "'"


def hiding_problem(text: str) -> str | None:
    """Why ``text`` may not appear in a document (see the design notes), or None."""
    found = _HIDING.search(text)
    if found is None:
        return None
    return (
        f"must not contain {describe_char(found.group())} (at index {found.start()}). "
        f"Got {shown_around(text, found.start())} instead; accepted: printable text, with tabs and line breaks."
    )


def shown_around(text: str, index: int, width: int = 32) -> str:
    """:func:`escaped` ``text``, or the part of a long text around ``index`` (``...`` marks what is left out)."""
    if len(text) <= 2 * width:
        return escaped(text)
    start, end = max(0, index - width), min(len(text), index + width)
    return ("..." if start else "") + escaped(text[start:end]) + ("..." if end < len(text) else "")


_INVISIBLE = frozenset({"Cc", "Cf", "Co", "Zl", "Zp"})


def text_problem(text: str) -> str | None:
    """Why ``text`` cannot be a typed string field (see the design notes), or None. Characters the document level
    refuses (:func:`~daemon.strict_yaml.hiding_problem`) are left to it: reported there, once."""
    if hiding_problem(text) is not None:
        return None
    for index, char in enumerate(text):
        if unicodedata.category(char) in _INVISIBLE:
            return (
                f"must not contain the invisible character {describe_char(char)} (at index {index}). "
                f"Got {shown_around(text, index)} instead; accepted: visible characters and spaces."
            )
    nfc = unicodedata.normalize("NFC", text)
    if nfc == text:
        return None
    first = next((i for i, (a, b) in enumerate(zip(text, nfc, strict=False)) if a != b), len(nfc))
    mark = next((i for i in range(first, len(text)) if unicodedata.category(text[i]).startswith("M")), None)
    what = (
        f"{describe_char(text[mark])} at index {mark} composes with the character before it"
        if mark is not None
        else f"{describe_char(text[first])} at index {first} has another NFC form"
    )
    return (
        f"must be in Unicode NFC form (composed characters): {what}. Got {shown_around(text, first)} instead; "
        f"write {shown_around(nfc, first)}, which looks the same."
    )


@dataclass(frozen=True, slots=True)
class Issue:
    """One problem in a document: where it is and what is wrong."""

    file: str
    line: int
    path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}"
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


class DocumentError(ConfigError):
    """A document (a profile) has one or more issues; ``str()`` lists them one per line, in line order."""

    def __init__(self, issues: list[Issue] | tuple[Issue, ...]) -> None:
        self.issues = tuple(sorted(issues, key=lambda issue: issue.line))
        super().__init__("\n".join(str(issue) for issue in self.issues))


class Kind(enum.Enum):
    """What a scalar unambiguously is."""

    NULL = "null"
    BOOL = "bool"
    INT = "int"
    FLOAT = "float"
    STR = "str"
    UNCLEAR = "unclear"  # read differently by YAML 1.1 and 1.2, or not in the strict form


@dataclass(frozen=True, slots=True)
class Scalar:
    text: str
    line: int
    kind: Kind
    quoted: bool = False
    note: str = ""  # for UNCLEAR: how the readings differ and what to write instead

    def shown(self) -> str:
        """The scalar as the user wrote it, for messages."""
        return repr(self.text) if self.quoted or self.kind is Kind.STR else self.text


@dataclass(frozen=True, slots=True)
class MapNode:
    entries: tuple[tuple[Scalar, Node], ...]
    line: int


@dataclass(frozen=True, slots=True)
class SeqNode:
    items: tuple[Node, ...]
    line: int


Node = Scalar | MapNode | SeqNode


@dataclass(slots=True)
class Document:
    """A loaded document: its root node (``None`` when empty) and the issues found while loading."""

    file: str
    root: Node | None
    issues: list[Issue] = field(default_factory=list)


class StrictLoader(yaml.SafeLoader):
    """A SafeLoader that composes nodes only and records tags, anchors, aliases and deep nesting as issues."""

    def __init__(self, text: str, file: str) -> None:
        super().__init__(text)
        self.file = file
        self.flagged: dict[int, list[str]] = {}  # id(node) -> problems found while composing it
        self._depth = 0

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        event = self.peek_event()  # type: ignore[no-untyped-call]
        if isinstance(event, yaml.AliasEvent):
            self.get_event()  # type: ignore[no-untyped-call]
            alias = yaml.ScalarNode("tag:yaml.org,2002:null", "", event.start_mark, event.end_mark)  # type: ignore[arg-type]
            self.flagged[id(alias)] = [f"aliases are not allowed (*{event.anchor}); write the value out"]
            return alias
        problems = []
        anchor = getattr(event, "anchor", None)
        if anchor is not None:
            problems.append(f"anchors are not allowed (&{anchor})")
        tag = getattr(event, "tag", None)
        if tag is not None and tag != "!":
            problems.append(f"{'python tags' if 'python/' in tag else 'tags'} are not allowed ({tag})")
        if self._depth >= MAX_DEPTH:
            raise yaml.MarkedYAMLError(problem=f"nesting deeper than {MAX_DEPTH} levels", problem_mark=event.start_mark)
        self._depth += 1
        try:
            node = super().compose_node(parent, index)
        finally:
            self._depth -= 1
        if problems and node is not None:
            self.flagged[id(node)] = problems
        return node

    def classify(self, text: str) -> tuple[Kind, str]:
        """The kind of a plain scalar, and for :attr:`Kind.UNCLEAR` a note for the user."""
        if text in _NULLS:
            return Kind.NULL, ""
        if text in ("true", "false"):
            return Kind.BOOL, ""
        if _INT.fullmatch(text):
            return Kind.INT, ""
        if _FLOAT.fullmatch(text):
            return Kind.FLOAT, ""
        tag11: str = self.resolve(yaml.ScalarNode, text, (True, False))  # type: ignore[no-untyped-call]
        reading12 = _core_reading(text)
        if tag11 == _STR_TAG and reading12 is None:
            return Kind.STR, ""
        reading11 = self._reading11(text, tag11)
        if reading12 is None:
            reading12 = f"the string {text!r}"
        if reading11 == reading12:
            return Kind.UNCLEAR, f"plain {text} is not in the strict form accepted here (it is {reading11})"
        return Kind.UNCLEAR, f"plain {text} is read as {reading11} by YAML 1.1 and as {reading12} by YAML 1.2"

    def _reading11(self, text: str, tag: str) -> str:
        if tag == _STR_TAG:
            return f"the string {text!r}"
        try:
            value = self.yaml_constructors[tag](self, yaml.ScalarNode(tag, text))
        except (ValueError, yaml.YAMLError):
            return tag.rsplit(":", 1)[-1]
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, int | float):
            return repr(value)
        return f"a {tag.rsplit(':', 1)[-1]} ({value})"


def _core_reading(text: str) -> str | None:
    """How a YAML 1.2 (core schema) reader takes a plain scalar, or None when it is a string there too."""
    if _CORE_BOOL.fullmatch(text):
        return text.lower()
    if _CORE_INT.fullmatch(text):
        if text.startswith(("0o", "0x")):
            return repr(int(text[2:], 8 if text[1] == "o" else 16))
        return repr(int(text)) if len(text) < 100 else "an integer"
    if _CORE_FLOAT.fullmatch(text):
        return repr(
            float(
                text.replace(".inf", "inf")
                .replace(".Inf", "inf")
                .replace(".INF", "inf")
                .replace(".nan", "nan")
                .replace(".NaN", "nan")
                .replace(".NAN", "nan")
            )
        )
    return None


def load_text(text: str, file: str) -> Document:
    """Load one YAML document from ``text``; ``file`` names it in issues. Syntax errors raise DocumentError."""
    nul = text.find("\x00")
    if nul >= 0:
        raise DocumentError([Issue(file, text.count("\n", 0, nul) + 1, "", "NUL bytes are not allowed")])
    try:
        loader = StrictLoader(text, file)
    except yaml.reader.ReaderError as exc:
        line = text.count("\n", 0, exc.position) + 1
        code = exc.character if isinstance(exc.character, int) else ord(exc.character)
        message = f"character #x{code:04x} is not allowed ({exc.reason})"
        raise DocumentError([Issue(file, line, "", message)]) from exc
    try:
        node = loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        problem = ", ".join(part for part in (exc.context, exc.problem) if part) or "syntax error"
        raise DocumentError([Issue(file, line, "", f"invalid YAML: {problem}")]) from exc
    finally:
        loader.dispose()
    doc = Document(file, None)
    if node is not None:
        doc.root = _convert(node, "", loader, doc.issues)
    return doc


def load_file(path: str | Path, max_bytes: int = MAX_BYTES) -> Document:
    """Read ``path`` (at most ``max_bytes``, UTF-8) and load it with :func:`load_text`."""
    file = str(path)
    try:
        with open(path, "rb") as stream:
            data = stream.read(max_bytes + 1)
    except OSError as exc:
        raise DocumentError([Issue(file, 1, "", f"cannot read the file: {exc.strerror or exc}")]) from exc
    if len(data) > max_bytes:
        raise DocumentError([Issue(file, 1, "", f"the file is larger than {max_bytes} bytes")])
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        message = f"not valid UTF-8: byte 0x{data[exc.start]:02x} at offset {exc.start}"
        raise DocumentError([Issue(file, line, "", message)]) from exc
    return load_text(text, file)


def join_path(parent: str, key: str | int) -> str:
    """``cameras`` + 0 -> ``cameras[0]``; ``cameras[0]`` + ``name`` -> ``cameras[0].name``. A key that is not
    plain printable text is shown through :func:`escaped`, so a path never hides or reorders what follows it."""
    if isinstance(key, int):
        return f"{parent}[{key}]"
    if escaped(key) != f"'{key}'":
        key = escaped(key)
    return f"{parent}.{key}" if parent else key


def _convert(node: yaml.Node, path: str, loader: StrictLoader, issues: list[Issue]) -> Node:
    line = node.start_mark.line + 1
    issues.extend(Issue(loader.file, line, path, problem) for problem in loader.flagged.get(id(node), ()))
    if isinstance(node, yaml.ScalarNode):
        if (problem := hiding_problem(node.value)) is not None:
            issues.append(Issue(loader.file, line, path, problem))
        if node.style is not None:
            return Scalar(node.value, line, Kind.STR, quoted=True)
        kind, note = loader.classify(node.value)
        return Scalar(node.value, line, kind, note=note)
    if isinstance(node, yaml.SequenceNode):
        return SeqNode(
            tuple(_convert(item, join_path(path, i), loader, issues) for i, item in enumerate(node.value)), line
        )
    entries: list[tuple[Scalar, Node]] = []
    seen: dict[str, tuple[str, int]] = {}  # NFC key -> (the key as written, its line)
    for key_node, value_node in node.value:
        key_line = key_node.start_mark.line + 1
        if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == _MERGE_TAG:
            what = "merge keys (<<) are" if key_node.tag == _MERGE_TAG else "keys that are not strings are"
            issues.append(Issue(loader.file, key_line, path, f"{what} not allowed"))
            continue
        key = Scalar(key_node.value, key_line, Kind.STR, quoted=key_node.style is not None)
        child_path = join_path(path, key.text)
        if (problem := hiding_problem(key.text)) is not None:
            issues.append(Issue(loader.file, key_line, child_path, f"key {problem}"))
        same = unicodedata.normalize("NFC", key.text)
        if same in seen:
            first, first_line = seen[same]
            issues.append(Issue(loader.file, key_line, child_path, _duplicate_key(key.text, first, first_line)))
            continue
        seen[same] = (key.text, key_line)
        entries.append((key, _convert(value_node, child_path, loader, issues)))
    return MapNode(tuple(entries), line)


def _duplicate_key(key: str, first: str, first_line: int) -> str:
    if key == first:
        return f"duplicate key (first at line {first_line})"
    return (
        f"duplicate key (first at line {first_line}): {escaped(key)} and {escaped(first)} are the same text in "
        "Unicode NFC normalisation; write each key once."
    )
