"""Profile overrides: a mapping of dotted field paths to JSON values, applied to a profile document before it is
validated, so an overridden value is checked exactly like one written in the file.

``{"acquisition.frames": 10, "cameras[0].settings.height": 256, "storage.store": "today/run.zarr"}``

Paths use the same spelling as profile errors: mapping keys joined by ``.``, list items as ``[i]`` (``.i`` is
accepted too). A path may create missing mapping keys (and missing sections), but list items must exist. ``null``
removes a value in effect (a null field counts as absent), e.g. ``{"acquisition.frames": null,
"acquisition.duration_s": 5}`` switches the stop condition.

Design notes:
- The document is a tree of frozen :mod:`daemon.strict_yaml` nodes; overriding rebuilds the spine of each path and
  shares everything else. A new node takes the line of the node it replaces (or of the mapping it is added to), so
  an error about an overridden value still names a line and the field path.
- JSON values become nodes with the kind they unambiguously have (an int is ``Kind.INT``, a string is a quoted
  ``Kind.STR``): a string ``"10"`` does not become a number, as in the file.
- A malformed path or a path through a scalar raises :class:`~daemon.errors.ConfigError` naming the override.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from daemon.errors import ConfigError
from daemon.strict_yaml import MAX_DEPTH, Document, Kind, MapNode, Node, Scalar, SeqNode

_SEGMENT = re.compile(r"(?P<key>[^.\[\]]+)?(?P<indexes>(?:\[[0-9]+\])*)")
_INDEX = re.compile(r"\[([0-9]+)\]")
MAX_INDEX = 1_000_000

PathPart = str | int


def parse_override_path(path: str) -> tuple[PathPart, ...]:
    """``"cameras[0].settings.height"`` -> ``("cameras", 0, "settings", "height")``; ``.0`` is an index too."""
    parts: list[PathPart] = []
    for segment in path.split("."):
        found = _SEGMENT.fullmatch(segment)
        if not segment or found is None or (found["key"] is None and not found["indexes"]):
            raise ConfigError(
                f"override {path!r} is not a field path; write keys joined by '.' and list items as [i], "
                "e.g. 'cameras[0].settings.height'."
            )
        key = found["key"]
        if key is not None:
            parts.append(int(key) if key.isdigit() else key)
        parts.extend(int(index) for index in _INDEX.findall(found["indexes"]))
    if isinstance(parts[0], int):
        raise ConfigError(f"override {path!r} must start with a section name such as 'acquisition'.")
    if any(isinstance(part, int) and part > MAX_INDEX for part in parts):
        raise ConfigError(f"override {path!r} has a list index above {MAX_INDEX}.")
    return tuple(parts)


def apply_overrides(doc: Document, overrides: Mapping[str, Any]) -> Document:
    """A new document with every override applied in order (``doc`` is not changed)."""
    root: Node | None = doc.root
    for path, value in overrides.items():
        parts = parse_override_path(path)
        if root is None:
            root = MapNode((), 1)
        root = _set(root, parts, value, path)
    return Document(doc.file, root, list(doc.issues))


def _set(node: Node, parts: tuple[PathPart, ...], value: Any, path: str) -> Node:
    if not parts:
        return to_node(value, node.line, path)
    head, rest = parts[0], parts[1:]
    if isinstance(node, MapNode) and isinstance(head, str):
        return _set_in_map(node, head, rest, value, path)
    if isinstance(node, SeqNode) and isinstance(head, int):
        if head >= len(node.items):
            raise ConfigError(f"override {path!r}: the list has {len(node.items)} item(s); index {head} is not one.")
        items = list(node.items)
        items[head] = _set(items[head], rest, value, path)
        return SeqNode(tuple(items), node.line)
    what = "a mapping" if isinstance(node, MapNode) else "a list" if isinstance(node, SeqNode) else "a value"
    step = f"[{head}]" if isinstance(head, int) else repr(head)
    raise ConfigError(f"override {path!r}: cannot step into {what} with {step} (line {node.line}).")


def _set_in_map(node: MapNode, key: str, rest: tuple[PathPart, ...], value: Any, path: str) -> MapNode:
    entries = list(node.entries)
    for index, (name, child) in enumerate(entries):
        if name.text == key:
            target = child
            if rest and isinstance(child, Scalar) and child.kind is Kind.NULL:
                target = MapNode((), child.line)  # "section:" left empty in the file
            entries[index] = (name, _set(target, rest, value, path))
            return MapNode(tuple(entries), node.line)
    if rest and isinstance(rest[0], int):
        raise ConfigError(f"override {path!r}: there is no list {key!r} to index (line {node.line}).")
    child = _set(MapNode((), node.line), rest, value, path) if rest else to_node(value, node.line, path)
    entries.append((Scalar(key, node.line, Kind.STR), child))
    return MapNode(tuple(entries), node.line)


def to_node(value: Any, line: int, path: str, depth: int = 0) -> Node:
    """A JSON value as a strict-YAML node at ``line``, with the kind it unambiguously has."""
    if depth > MAX_DEPTH:
        raise ConfigError(f"override {path!r}: the value is nested deeper than {MAX_DEPTH} levels.")
    if value is None:
        return Scalar("", line, Kind.NULL)
    if isinstance(value, bool):
        return Scalar("true" if value else "false", line, Kind.BOOL)
    if isinstance(value, int):
        return Scalar(str(value), line, Kind.INT)
    if isinstance(value, float):
        return Scalar(repr(value), line, Kind.FLOAT)
    if isinstance(value, str):
        return Scalar(value, line, Kind.STR, quoted=True)
    if isinstance(value, list | tuple):
        return SeqNode(tuple(to_node(item, line, path, depth + 1) for item in value), line)
    if isinstance(value, Mapping):
        entries = []
        for key, item in value.items():
            if not isinstance(key, str):
                raise ConfigError(f"override {path!r}: mapping keys must be strings. Got {key!r} instead.")
            entries.append((Scalar(key, line, Kind.STR), to_node(item, line, path, depth + 1)))
        return MapNode(tuple(entries), line)
    raise ConfigError(f"override {path!r}: the value must be JSON. Got {type(value).__name__} instead.")
