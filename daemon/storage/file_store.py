"""The local-disk :class:`Store`: a folder; objects are built as ``<key>.partial`` and renamed into place.

Design notes:
- A sink creates ``<key>.partial`` (and the folders above it) when opened, writes with ``pwritev`` at the offsets
  it is given, and on ``finalize`` fsyncs the file, renames it to ``<key>`` and fsyncs the folder: the object
  appears whole and durable, or not at all. The file is opened for each operation rather than kept open, so
  thousands of objects under construction do not exhaust file descriptors.
- Small objects (metadata) are written to a temporary name, fsynced and renamed (:meth:`FileStore.put`).
- Every ``OSError`` becomes a :class:`~daemon.errors.StorageError` naming the path. A failed write is sticky: the
  sink deletes its ``.partial`` file, turns ABORTED, and later writes or ``finalize`` raise
  :class:`~daemon.errors.StreamClosedError`.
- A write behind what was already written raises :class:`~daemon.errors.StorageError` (the object is not
  harmed); a write past the end leaves a hole that reads as zeros.
"""

from __future__ import annotations

import itertools
import os
import shutil
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import NoReturn

from daemon.errors import ConfigError, StorageError, StreamClosedError
from daemon.storage.sink import Buffer, Sink, SinkState, Store, parse_key

PARTIAL_SUFFIX = ".partial"
_IOV_MAX = 512
_tmp_counter = itertools.count()


@contextmanager
def storage_errors(action: str, path: Path | str) -> Iterator[None]:
    """Translate an ``OSError`` into a StorageError naming ``path``."""
    try:
        yield
    except StorageError:
        raise
    except OSError as exc:
        raise StorageError(f"cannot {action} {path}: {exc.strerror or exc}") from exc


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def pwrite_all(fd: int, buffers: Sequence[Buffer], offset: int) -> int:
    """Write every byte of ``buffers`` at ``offset`` (retrying short writes); returns the bytes written."""
    views = [memoryview(b).cast("B") for b in buffers]
    views = [v for v in views if v.nbytes]
    total = 0
    while views:
        batch = views[:_IOV_MAX]
        n = os.pwritev(fd, batch, offset + total)
        total += n
        while views and n >= views[0].nbytes:
            n -= views[0].nbytes
            views.pop(0)
        if n:
            views[0] = views[0][n:]
    return total


class FileSink(Sink):
    """One file under construction as ``<path>.partial``."""

    def __init__(self, key: str, path: Path) -> None:
        self._key = key
        self._path = path
        self._partial = path.with_name(path.name + PARTIAL_SUFFIX)
        self._end = 0
        self._state = SinkState.OPEN
        self._error: StorageError | None = None
        with storage_errors("create", self._partial):
            path.parent.mkdir(parents=True, exist_ok=True)
            os.close(os.open(self._partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644))

    @property
    def key(self) -> str:
        return self._key

    @property
    def state(self) -> SinkState:
        return self._state

    @property
    def path(self) -> Path:
        return self._path

    def write(self, offset: int, buffers: Sequence[Buffer]) -> None:
        self._check_open("write")
        if offset < self._end:
            raise StorageError(
                f"write at offset {offset} of {self._partial} is behind the {self._end} bytes already written."
            )
        try:
            with storage_errors("write", self._partial):
                fd = os.open(self._partial, os.O_WRONLY | os.O_CLOEXEC)
                try:
                    written = pwrite_all(fd, buffers, offset)
                finally:
                    os.close(fd)
        except StorageError as exc:
            self._fail(exc)
        self._end = max(self._end, offset + written)

    def finalize(self) -> None:
        if self._state is SinkState.FINALIZED:
            return
        self._check_open("finalize")
        try:
            with storage_errors("finalize", self._path):
                fd = os.open(self._partial, os.O_WRONLY | os.O_CLOEXEC)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
                os.replace(self._partial, self._path)
                fsync_dir(self._path.parent)
        except StorageError as exc:
            self._fail(exc)
        self._state = SinkState.FINALIZED

    def abort(self) -> None:
        if self._state is not SinkState.OPEN:
            return
        self._state = SinkState.ABORTED
        with storage_errors("remove", self._partial):
            self._partial.unlink(missing_ok=True)

    def _fail(self, error: StorageError) -> NoReturn:
        self._error = error
        try:
            self.abort()
        except StorageError as abort_error:
            error.add_note(f"also failed to remove {self._partial}: {abort_error}")
        raise error

    def _check_open(self, action: str) -> None:
        if self._state is SinkState.OPEN:
            return
        if self._error is not None:
            raise StreamClosedError(
                f"cannot {action} {self._path}: it failed earlier ({self._error})."
            ) from self._error
        raise StreamClosedError(f"cannot {action} {self._path}: the sink is {self._state.value}.")


class FileStore(Store):
    """A store in the local folder ``root`` (created on the first write)."""

    def __init__(self, root: Path | str) -> None:
        self._root = Path(root).absolute()

    @property
    def url(self) -> str:
        return str(self._root)

    @property
    def root(self) -> Path:
        return self._root

    def path(self, key: str) -> Path:
        return self._root / parse_key(key)

    def open_sink(self, key: str) -> FileSink:
        return FileSink(key, self.path(key))

    def put(self, key: str, data: Buffer) -> None:
        path = self.path(key)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.{next(_tmp_counter)}.tmp")
        with storage_errors("write", path):
            path.parent.mkdir(parents=True, exist_ok=True)
            try:
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
                try:
                    pwrite_all(fd, [data], 0)
                    os.fsync(fd)
                finally:
                    os.close(fd)
                os.replace(tmp, path)
            except OSError:
                tmp.unlink(missing_ok=True)
                raise
            fsync_dir(path.parent)

    def get(self, key: str) -> bytes | None:
        path = self.path(key)
        try:
            return path.read_bytes()
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            return None
        except OSError as exc:
            raise StorageError(f"cannot read {path}: {exc.strerror or exc}") from exc

    def is_empty(self) -> bool:
        with storage_errors("list", self._root):
            if not self._root.exists():
                return True
            return self._root.is_dir() and next(self._root.iterdir(), None) is None

    def clear(self) -> None:
        if self._root == Path(self._root.anchor) or self._root == Path.home():
            raise ConfigError(f"store_path {self._root} is a filesystem root or home folder: refusing to clear it.")
        with storage_errors("clear", self._root):
            if self._root.is_dir() and not self._root.is_symlink():
                shutil.rmtree(self._root)
            elif self._root.exists() or self._root.is_symlink():
                self._root.unlink()
