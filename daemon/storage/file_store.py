"""The local-disk :class:`Store`: a folder; objects are built as ``<key>.partial`` and renamed into place.

Design notes:
- A sink creates ``<key>.partial`` (and the folders above it) when opened, writes with ``pwritev`` at the offsets
  it is given, and on ``finalize`` fsyncs the file, renames it to ``<key>`` and fsyncs the folder: the object
  appears whole and durable, or not at all. The file is opened for each operation rather than kept open, so
  thousands of objects under construction do not exhaust file descriptors.
- Small objects (metadata) are written to a temporary name, fsynced and renamed (:meth:`FileStore.put`).
- Direct I/O: where the filesystem accepts ``O_DIRECT`` (probed once per sink), a single-buffer write at an
  aligned offset whose memory is page-aligned (a chunk compressed into a worker's reused buffer, or a raw chunk of a
  chunk-group block) goes to the device without the page cache: its 4 KiB-aligned head with ``O_DIRECT``, the
  rest (< 4 KiB) through the cache. :attr:`FileSink.alignment` tells the shard builder to place chunks at aligned
  offsets. Measured on this kind of 2-core VM: writing through the cache cost 1.0-1.5 cores of CPU at 1.8 GB/s,
  ``O_DIRECT`` 0.05-0.08 cores at 1.5 GB/s; the engine went from ~620 to ~930 MB/s (2048^2 uint16, lz4), ~400 to
  ~550 (zstd), ~770 to ~960 (raw), A/B interleaved. Anything else (unaligned memory, several buffers, the shard
  index, metadata) is written through the cache as before.
- A direct write goes to the device in pieces of at most ``DIRECT_PIECE_BYTES`` (2 MiB). An fsync's journal
  commit and cache flush queue behind whatever writes are in flight on the device, and on this kind of VM a
  16 MiB write in flight made another file's fsync take 10-16 ms, against 1.5-3.8 ms behind 0.5-2 MiB pieces (and
  0.2 ms with no write in flight). At 512x512 every 16 MiB object is made durable on its own, so the finalizer's
  fsyncs bound the run: 2 MiB pieces raised 512-none from a median 1103 to 1497 MB/s (6 rounds alternating),
  while 512-lz4 (partly compression-bound) and the 2048x2048 cases, where an fsync is rare, did not separate.
  256 KiB pieces were slower than none (more requests per byte); 1, 2 and 4 MiB did about the same.
- Once fsynced, an object's pages are dropped from the page cache (``POSIX_FADV_DONTNEED``): nothing written is
  read back, and new page-cache pages then come from recently freed memory. Measured on a VM whose host reclaims
  idle guest memory: ``pwrite`` into the page cache ran at 0.4-1 GB/s when every page was fresh, 1.8-4 GB/s with
  the pages recycled (the whole write + fsync path 0.4-0.95 -> 1.1-1.7 GB/s). It also keeps a long acquisition
  from evicting everything else from the cache.
- Symlinks: files are opened with ``O_NOFOLLOW``, so a symlink planted at an object's ``.partial`` or temporary
  name is never written through. With ``refuse_symlinks`` (the daemon's stores, :func:`~.location.open_store`:
  their paths were resolved inside the data root before the run), the first write or ``clear`` checks that the
  root's path still resolves to itself, so a folder on it swapped for a symlink since the check is refused with a
  StorageError naming both paths. A swap made after that first check is not caught (that would take ``openat``
  through every folder).
- One writer at a time: :meth:`FileStore.lock` (the storage worker, before it opens the stream) takes an
  exclusive ``flock`` on the store's folder itself, held until :meth:`FileStore.close`; a second writer, in any
  process (a foreground ``acqd run`` of the same profile, a resume while the interrupted run's worker is still
  closing its store), gets a StoreBusyError before it writes or clears anything, and :meth:`FileStore.check_free`
  lets a run refuse to start for the same reason. The folder is never replaced while locked: ``clear`` empties it
  rather than deleting it, so the lock stays on the store's one folder. A lock dies with its process (a crash
  leaves nothing stale to clean up); advisory, so only acqd's own writers honour it.
- Every ``OSError`` becomes a :class:`~daemon.errors.StorageError` naming the path. A failed write is sticky: the
  sink deletes its ``.partial`` file, turns ABORTED, and later writes or ``finalize`` raise
  :class:`~daemon.errors.StreamClosedError`.
- A write behind what was already written raises :class:`~daemon.errors.StorageError` (the object is not
  harmed); a write past the end leaves a hole that reads as zeros.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import itertools
import os
import shutil
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import NoReturn

import numpy as np

from daemon.errors import ConfigError, StorageError, StoreBusyError, StreamClosedError
from daemon.storage.sink import Buffer, Sink, SinkState, Store, parse_key

PARTIAL_SUFFIX = ".partial"
DIRECT_ALIGNMENT = 4096  # offsets, lengths and memory of O_DIRECT writes (the common logical block size)
DIRECT_PIECE_BYTES = 2 << 20  # the most one O_DIRECT write puts in flight (see the design notes)
O_DIRECT: int = getattr(os, "O_DIRECT", 0)
_IOV_MAX = 512
_CREATE = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC | os.O_NOFOLLOW
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


def _direct_io_works(path: Path) -> bool:
    """True when ``path``'s filesystem accepts ``O_DIRECT`` (ext4, xfs: yes; tmpfs, some FUSE: no)."""
    if not O_DIRECT:
        return False
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CLOEXEC | os.O_NOFOLLOW | O_DIRECT))
    except OSError:
        return False
    return True


def drop_cached(fd: int) -> None:
    """Hand the (clean, just fsynced) cached pages of ``fd`` back to the kernel: advisory, never an error."""
    with contextlib.suppress(AttributeError, OSError):  # not Linux, or no page cache: nothing to hand back
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)


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

    def __init__(self, key: str, path: Path, direct: bool = True) -> None:
        """``direct``: write aligned spans with ``O_DIRECT`` when the filesystem allows it (see the design notes)."""
        self._key = key
        self._path = path
        self._partial = path.with_name(path.name + PARTIAL_SUFFIX)
        self._end = 0
        self._state = SinkState.OPEN
        self._error: StorageError | None = None
        with storage_errors("create", self._partial):
            path.parent.mkdir(parents=True, exist_ok=True)
            os.close(os.open(self._partial, _CREATE, 0o644))
        self._direct = direct and _direct_io_works(self._partial)

    @property
    def key(self) -> str:
        return self._key

    @property
    def state(self) -> SinkState:
        return self._state

    @property
    def path(self) -> Path:
        return self._path

    @property
    def alignment(self) -> int:
        return DIRECT_ALIGNMENT if self._direct else 1

    def write(self, offset: int, buffers: Sequence[Buffer]) -> None:
        self._check_open("write")
        if offset < self._end:
            raise StorageError(
                f"write at offset {offset} of {self._partial} is behind the {self._end} bytes already written."
            )
        try:
            with storage_errors("write", self._partial):
                fd = os.open(self._partial, os.O_WRONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
                try:
                    if self._direct and len(buffers) == 1 and offset % DIRECT_ALIGNMENT == 0:
                        written = self._write_direct(fd, buffers[0], offset)
                    else:
                        written = pwrite_all(fd, buffers, offset)
                finally:
                    os.close(fd)
        except StorageError as exc:
            self._fail(exc)
        self._end = max(self._end, offset + written)

    def _write_direct(self, fd: int, buffer: Buffer, offset: int) -> int:
        """The aligned head of ``buffer`` with ``O_DIRECT`` (when its memory is aligned) in pieces of at most
        ``DIRECT_PIECE_BYTES``, the tail through the cache."""
        view = memoryview(buffer).cast("B")
        head = view.nbytes - view.nbytes % DIRECT_ALIGNMENT
        if head and np.frombuffer(view, np.uint8).ctypes.data % DIRECT_ALIGNMENT == 0:
            try:
                direct_fd = os.open(self._partial, os.O_WRONLY | os.O_CLOEXEC | os.O_NOFOLLOW | O_DIRECT)
                try:
                    for start in range(0, head, DIRECT_PIECE_BYTES):
                        pwrite_all(direct_fd, [view[start : min(head, start + DIRECT_PIECE_BYTES)]], offset + start)
                finally:
                    os.close(direct_fd)
            except OSError as exc:
                if exc.errno != errno.EINVAL:
                    raise
                self._direct = False  # a device wanting larger alignment, or a filesystem that only pretends
                head = 0
        else:
            head = 0
        return head + pwrite_all(fd, [view[head:]], offset + head)

    def finalize(self) -> None:
        if self._state is SinkState.FINALIZED:
            return
        self._check_open("finalize")
        try:
            with storage_errors("finalize", self._path):
                fd = os.open(self._partial, os.O_WRONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
                try:
                    os.fsync(fd)
                    drop_cached(fd)
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

    def __init__(self, root: Path | str, direct_io: bool = True, refuse_symlinks: bool = False) -> None:
        """``direct_io``: let sinks write aligned spans with ``O_DIRECT`` where the filesystem allows it.
        ``refuse_symlinks``: refuse to write when a symlink is on the root's path (see the design notes)."""
        self._root = Path(root).absolute()
        self._direct = direct_io
        self._symlinks_checked = not refuse_symlinks
        self._lock_fd: int | None = None

    def _check_symlinks(self) -> None:
        """Raise StorageError when the root's path no longer resolves to itself (checked until it passes once)."""
        if self._symlinks_checked:
            return
        with storage_errors("resolve", self._root):
            real = self._root.resolve()
        if real != self._root:
            raise StorageError(
                f"cannot write the store {self._root}: its path now resolves to {real} (a folder on it was replaced "
                "by a symlink since the store was checked); refusing to write through it."
            )
        self._symlinks_checked = True

    @property
    def url(self) -> str:
        return str(self._root)

    @property
    def root(self) -> Path:
        return self._root

    def path(self, key: str) -> Path:
        return self._root / parse_key(key)

    def open_sink(self, key: str) -> FileSink:
        self._check_symlinks()
        return FileSink(key, self.path(key), direct=self._direct)

    def put(self, key: str, data: Buffer) -> None:
        self._check_symlinks()
        path = self.path(key)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.{next(_tmp_counter)}.tmp")
        with storage_errors("write", path):
            path.parent.mkdir(parents=True, exist_ok=True)
            try:
                fd = os.open(tmp, _CREATE, 0o644)
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

    def lock(self) -> None:
        """Take the store's folder (created if need be) for this process's writes; StoreBusyError when another
        process holds it (see the design notes). Idempotent."""
        if self._lock_fd is not None:
            return
        self._check_symlinks()
        with storage_errors("lock", self._root):
            self._root.mkdir(parents=True, exist_ok=True)
        self._lock_fd = self._flock()

    def check_free(self) -> None:
        """StoreBusyError when another process holds the store's lock now; nothing when it is free or absent."""
        if self._lock_fd is None and self._root.is_dir() and not self._root.is_symlink():
            os.close(self._flock())

    def close(self) -> None:
        """Release the lock, if held. Idempotent."""
        fd, self._lock_fd = self._lock_fd, None
        if fd is not None:
            os.close(fd)

    def _flock(self) -> int:
        with storage_errors("lock", self._root):
            fd = os.open(self._root, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise StoreBusyError(
                f"store {self._root} is being written by another acqd process (a run's storage worker): wait until "
                "that run ends, or choose another store. A worker whose run died closes its store within seconds."
            ) from None
        except OSError as exc:
            os.close(fd)
            raise StorageError(f"cannot lock {self._root}: {exc.strerror or exc}") from exc
        return fd

    def is_empty(self) -> bool:
        with storage_errors("list", self._root):
            if not self._root.exists():
                return True
            return self._root.is_dir() and next(self._root.iterdir(), None) is None

    def clear(self) -> None:
        if self._root == Path(self._root.anchor) or self._root == Path.home():
            raise ConfigError(f"store_path {self._root} is a filesystem root or home folder: refusing to clear it.")
        self._check_symlinks()
        self.check_free()
        with storage_errors("clear", self._root):
            if self._root.is_dir() and not self._root.is_symlink():
                for child in self._root.iterdir():  # the folder itself stays: it carries the lock
                    if child.is_dir() and not child.is_symlink():
                        shutil.rmtree(child)
                    else:
                        child.unlink()
            elif self._root.exists() or self._root.is_symlink():
                self._root.unlink()
