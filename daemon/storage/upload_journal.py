"""The upload journal: a staged store's local folder, where every object waiting for upload is one file.

Layout of one store's folder (``<staging_dir>/<bucket>~<prefix with '/' as '~'>/``; ``~`` cannot occur in a
bucket or a key, so two stores never share a folder)::

    store.json                      {"format": 1, "url": "s3://bucket/prefix", "endpoint": ...}
    lock                            flock'ed by the one process that owns the folder
    pending/<key>.<seq>.<kind>      a complete object waiting for upload (kind: data from a sink, meta from put)
    pending/<key>.w<n>...           an object under construction (.partial/.tmp while written, then .w<n> until
                                    committed); a leftover of a crash: deleted when the folder is opened
    kept/<key>                      uploaded objects, when ``keep_staged`` is set

Design notes:
- The journal *is* the set of files: an object is pending from the moment its file gets its final name (a rename,
  after the data was fsynced, followed by a fsync of the folder) until it was uploaded and verified and the file
  is deleted (or moved to ``kept/``). No separate log to keep in step, nothing to replay: after a crash or a
  restart, listing ``pending/`` gives the objects to upload and the order to upload them in.
- ``seq`` is given when an object is finalized (``commit``), in the order objects were finalized, and survives
  restarts (the next one is above every file present). Uploading in ``seq`` order, and a ``meta`` object only after
  every object before it, means metadata never reaches S3 before the data it claims (it was written after it).
- Each version of a key is its own file, so a newer ``put`` of the same key never changes the bytes of an older
  version on its way to S3; an older version still waiting when a newer one is committed is simply dropped.
- Objects are built with :class:`~daemon.storage.file_store.FileSink` / :meth:`FileStore.put` under a working
  name (``.partial`` or ``.tmp`` then rename, fsync), then renamed to their journal name by :meth:`commit`.
- Every ``OSError`` becomes a :class:`~daemon.errors.StorageError` naming the path.
"""

from __future__ import annotations

import enum
import fcntl
import itertools
import json
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from daemon.errors import StorageError
from daemon.log import get_logger
from daemon.storage.file_store import FileSink, FileStore, fsync_dir, storage_errors
from daemon.storage.s3_names import S3Location, parse_s3_url

MANIFEST = "store.json"
LOCK = "lock"
PENDING = "pending"
KEPT = "kept"
FORMAT = 1
_ENTRY = re.compile(r"^(?P<key>.+)\.(?P<seq>\d+)\.(?P<kind>data|meta)$")

log = get_logger(__name__)


class ObjectKind(enum.Enum):
    DATA = "data"  # written through a sink (chunks, shards): may be uploaded in any order
    META = "meta"  # written by put (metadata): uploaded only after every object committed before it


@dataclass(frozen=True, slots=True)
class StagedObject:
    """One pending object: its journal file ``path`` holds version ``seq`` of store key ``key``."""

    seq: int
    key: str
    kind: ObjectKind
    path: Path
    size: int


def store_folder(staging_dir: Path, location: S3Location) -> Path:
    """The staging folder of the store at ``location``."""
    return staging_dir / f"{location.bucket}~{location.prefix.replace('/', '~')}"


def staged_locations(staging_dir: Path | str) -> list[S3Location]:
    """The stores that have a folder in ``staging_dir`` (read from their manifests), sorted by URL."""
    root = Path(staging_dir)
    found = []
    with storage_errors("list", root):
        folders = sorted(root.iterdir()) if root.is_dir() else []
        for folder in folders:
            manifest = folder / MANIFEST
            if manifest.is_file():
                found.append(_read_manifest(manifest))
    return sorted(found, key=lambda location: location.url)


def _read_manifest(path: Path) -> S3Location:
    try:
        url = json.loads(path.read_text())["url"]
        return parse_s3_url(url)
    except (ValueError, KeyError, TypeError) as exc:  # ConfigError is a ValueError
        raise StorageError(f"staging manifest {path} is not valid ({exc}); move the folder away to skip it.") from exc


class UploadJournal:
    """The staging folder of one store, owned (flock) by this object until :meth:`close`."""

    def __init__(self, staging_dir: Path | str, location: S3Location, endpoint: str | None = None) -> None:
        self._root = store_folder(Path(staging_dir).absolute(), location)
        self._pending = self._root / PENDING
        self._files = FileStore(self._pending)
        self._working = itertools.count()
        self._lock_fd = -1
        with storage_errors("create the staging folder", self._root):
            self._pending.mkdir(parents=True, exist_ok=True)
            self._lock()
        try:
            self._write_manifest(location, endpoint)
            self._entries, leftovers = self._scan()
        except BaseException:
            self.close(remove_if_empty=False)
            raise
        self._next_seq = max((e.seq for e in self._entries), default=0) + 1
        if leftovers:
            log.info("staging_leftovers_removed", folder=str(self._root), files=leftovers)

    @property
    def root(self) -> Path:
        return self._root

    def recovered(self) -> list[StagedObject]:
        """The objects that were pending when the journal was opened, in ``seq`` order."""
        return list(self._entries)

    # -- building objects -----------------------------------------------------------------------------------------

    def open_working(self, key: str) -> FileSink:
        """A sink building ``key`` under a working name; :meth:`commit` its path once it is finalized."""
        return self._files.open_sink(f"{key}.w{next(self._working)}")

    def put_working(self, key: str, data: bytes | bytearray | memoryview) -> Path:
        """Write ``data`` durably under a working name for ``key``; returns the path to :meth:`commit`."""
        name = f"{key}.w{next(self._working)}"
        self._files.put(name, data)
        return self._files.path(name)

    def commit(self, working: Path, key: str, kind: ObjectKind) -> StagedObject:
        """Give the complete file ``working`` the next ``seq``: from now on it is pending. The caller serialises
        commits (and queues the result before the next commit), so the upload order is the commit order."""
        seq = self._next_seq
        final = working.with_name(f"{working.name.rsplit('.', 1)[0]}.{seq}.{kind.value}")
        with storage_errors("commit", final):
            size = working.stat().st_size
            os.replace(working, final)
            fsync_dir(final.parent)
        self._next_seq += 1
        return StagedObject(seq, key, kind, final, size)

    def discard_working(self, working: Path) -> None:
        with storage_errors("remove", working):
            working.unlink(missing_ok=True)

    # -- after upload ---------------------------------------------------------------------------------------------

    def remove(self, entry: StagedObject) -> None:
        """Forget an uploaded (or superseded) object: delete its file."""
        with storage_errors("remove", entry.path):
            entry.path.unlink(missing_ok=True)

    def keep(self, entry: StagedObject) -> None:
        """Move an uploaded object to ``kept/<key>`` (replacing an older copy)."""
        target = self._root / KEPT / entry.key
        with storage_errors("keep", target):
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(entry.path, target)

    def clear(self) -> None:
        """Delete every pending object, every working file and every kept copy (the store is being overwritten)."""
        for folder in (self._pending, self._root / KEPT):
            with storage_errors("clear", folder):
                if folder.exists():
                    shutil.rmtree(folder)
        with storage_errors("create", self._pending):
            self._pending.mkdir(parents=True, exist_ok=True)

    def close(self, *, remove_if_empty: bool) -> bool:
        """Release the folder; with ``remove_if_empty``, delete it when nothing is pending or kept. Returns whether
        it was removed. Idempotent."""
        if self._lock_fd < 0:
            return False
        try:
            return remove_if_empty and self._remove_if_empty()
        finally:
            os.close(self._lock_fd)
            self._lock_fd = -1

    # -- internals ------------------------------------------------------------------------------------------------

    def _lock(self) -> None:
        fd = os.open(self._root / LOCK, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            os.close(fd)
            raise StorageError(
                f"staging folder {self._root} is in use by another store (one process per store at a time)."
            ) from exc
        except OSError:
            os.close(fd)
            raise
        self._lock_fd = fd

    def _write_manifest(self, location: S3Location, endpoint: str | None) -> None:
        manifest = {"format": FORMAT, "url": location.url, "endpoint": endpoint}
        FileStore(self._root).put(MANIFEST, json.dumps(manifest, indent=1).encode() + b"\n")

    def _scan(self) -> tuple[list[StagedObject], int]:
        """The pending objects (sorted by seq) and how many leftover working files were deleted."""
        entries: list[StagedObject] = []
        leftovers = 0
        with storage_errors("scan", self._pending):
            for folder, _dirs, files in os.walk(self._pending):
                for name in files:
                    path = Path(folder) / name
                    found = _ENTRY.match(name)
                    if found is None:
                        path.unlink()
                        leftovers += 1
                        continue
                    key = str(path.relative_to(self._pending).with_name(found["key"]))
                    kind = ObjectKind(found["kind"])
                    entries.append(StagedObject(int(found["seq"]), key, kind, path, path.stat().st_size))
        entries.sort(key=lambda e: e.seq)
        return entries, leftovers

    def _remove_if_empty(self) -> bool:
        with storage_errors("clean up", self._root):
            kept = self._root / KEPT
            if kept.exists() or _has_files(self._pending):
                return False
            shutil.rmtree(self._pending)
            for name in (MANIFEST, LOCK):
                (self._root / name).unlink(missing_ok=True)
            self._root.rmdir()
        return True


def _has_files(folder: Path) -> bool:
    return any(files for _root, _dirs, files in os.walk(folder))
