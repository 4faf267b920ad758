"""The daemon's profiles: the folder of named profiles as last (re)loaded, and turning a request into a Profile.

A profile is named by its file's stem (``demo.yaml`` -> ``demo``). :meth:`ProfileCatalog.reload` reads every
``*.yaml`` / ``*.yml`` file of the folder into strict-YAML documents and validates each, reporting the invalid ones;
:meth:`ProfileCatalog.load` then builds a :class:`~daemon.profile.Profile` for a ``start`` or ``validate``
request from a named document (as of the last reload) or inline text, with overrides applied to the document
first (:mod:`daemon.profile_overrides`), the daemon's S3 defaults filled in, and its queue budget checked.

Design notes:
- Named profiles are the documents read at the last reload, not the files as they are now: editing a file changes
  nothing until ``reload`` (or SIGHUP), so what ``profiles`` lists is what ``start`` runs.
- An invalid profile stays listed (so ``start`` answers ``invalid_profile`` with its file, line and field rather
  than ``not_found``).
- Thread safety: ``reload`` swaps the catalog atomically under a lock; ``load`` reads a snapshot.
"""

from __future__ import annotations

import dataclasses
import re
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from daemon.config import RunsConfig, S3Defaults
from daemon.errors import ConfigError, NotFoundError
from daemon.log import get_logger
from daemon.profile import Profile, parse_document
from daemon.profile_overrides import apply_overrides
from daemon.run_manager import ProfileInfo, ProfileSource
from daemon.strict_yaml import Document, DocumentError, load_file, load_text

log = get_logger("profiles")

INLINE_FILE = "<inline>"
SUFFIXES = (".yaml", ".yml")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
_DESCRIPTION_CHARS = 200


@dataclass(frozen=True, slots=True)
class _Entry:
    info: ProfileInfo
    document: Document | None  # None when the file could not even be parsed
    error: ConfigError | None  # why it does not validate (as of the last reload)


class ProfileCatalog:
    """The named profiles of one folder, and profile building for requests."""

    def __init__(self, folder: Path, data_root: Path, s3_defaults: S3Defaults, runs: RunsConfig) -> None:
        self.folder = folder
        self.data_root = data_root
        self._s3_defaults = s3_defaults
        self._max_queue_bytes = runs.max_queue_bytes
        self._lock = threading.Lock()
        self._entries: dict[str, _Entry] = {}

    def reload(self) -> dict[str, Any]:
        """Re-read the folder; returns ``{"folder", "profiles": [names], "invalid": {name: message}}``."""
        entries: dict[str, _Entry] = {}
        invalid: dict[str, str] = {}
        for path in self._profile_files():
            entry = _read_entry(path)
            entries[path.stem] = entry
            if entry.error is None and entry.document is not None:
                entry = dataclasses.replace(entry, error=self._check(entry.document))
                entries[path.stem] = entry
            if entry.error is not None:
                invalid[path.stem] = str(entry.error)
        with self._lock:
            self._entries = entries
        log.info("profiles_loaded", folder=str(self.folder), profiles=len(entries), invalid=sorted(invalid))
        return {"folder": str(self.folder), "profiles": sorted(entries), "invalid": invalid}

    def _profile_files(self) -> list[Path]:
        if not self.folder.is_dir():
            log.warning("profiles_folder_missing", folder=str(self.folder))
            return []
        chosen: dict[str, Path] = {}
        for path in sorted(self.folder.iterdir()):
            if path.suffix not in SUFFIXES or not path.is_file():
                continue
            if not _NAME.fullmatch(path.stem) or ".." in path.stem:
                log.warning("profile_name_refused", file=str(path))
                continue
            if path.stem in chosen:
                log.warning("profile_name_duplicate", file=str(path), kept=str(chosen[path.stem]))
                continue
            chosen[path.stem] = path
        return list(chosen.values())

    def _check(self, document: Document) -> ConfigError | None:
        try:
            self._build(document, {})
        except ConfigError as exc:  # DocumentError, or a daemon budget the profile exceeds
            return exc
        return None

    def infos(self) -> Sequence[ProfileInfo]:
        with self._lock:
            return [self._entries[name].info for name in sorted(self._entries)]

    def load(self, source: ProfileSource, overrides: Mapping[str, Any]) -> Profile:
        """The validated profile for a request; NotFoundError for an unknown name, ConfigError when invalid."""
        if source.name is not None:
            with self._lock:
                entry = self._entries.get(source.name)
            if entry is None:
                known = ", ".join(sorted(self._entries)) or "none"
                raise NotFoundError(f"no profile named {source.name!r} in {self.folder} (known: {known}).")
            if entry.document is None:
                assert entry.error is not None
                raise entry.error
            document = entry.document
        else:
            assert source.text is not None
            document = load_text(source.text, INLINE_FILE)
        return self._build(document, overrides)

    def _build(self, document: Document, overrides: Mapping[str, Any]) -> Profile:
        if overrides:
            document = apply_overrides(document, overrides)
        profile = parse_document(document, self.data_root)
        profile = self._with_s3_defaults(profile)
        limit = self._max_queue_bytes
        if limit is not None and isinstance(limit, int) and profile.acquisition.queue_bytes > limit:
            raise ConfigError(
                f"{profile.file}: acquisition.queue_bytes is {profile.acquisition.queue_bytes} bytes; this daemon "
                f"allows at most {limit} (runs.max_queue_bytes)."
            )
        return profile

    def _with_s3_defaults(self, profile: Profile) -> Profile:
        s3 = profile.stream.s3
        if s3 is None:
            return profile
        filled = self._s3_defaults.apply(s3)
        if filled is s3:
            return profile
        return dataclasses.replace(profile, stream=dataclasses.replace(profile.stream, s3=filled))


def _read_entry(path: Path) -> _Entry:
    info = ProfileInfo(name=path.stem, path=str(path), description=_description(path))
    try:
        document = load_file(path)
    except DocumentError as exc:
        return _Entry(info, None, exc)
    return _Entry(info, document, None)


def _description(path: Path) -> str:
    """The profile's first comment line (its title), without the ``#``."""
    try:
        with open(path, encoding="utf-8", errors="replace") as stream:
            first = stream.readline(_DESCRIPTION_CHARS + 2)
    except OSError:
        return ""
    text = first.strip()
    return text.lstrip("#").strip()[:_DESCRIPTION_CHARS] if text.startswith("#") else ""
