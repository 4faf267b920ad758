"""Where bytes go: the :class:`Store` (a folder, an S3 prefix, memory) and the :class:`Sink` (one object).

Design notes (after acquire-zarr's ``sink``):
- A sink is "write bytes at increasing offsets, then finalize". Writes behind what was already written are
  refused (an S3 multipart upload cannot go back). ``finalize`` makes the whole object visible atomically
  (local: a ``.partial`` file renamed into place; S3: a single PUT or a completed multipart upload) and is
  idempotent. ``abort`` discards everything and is idempotent too. After ``abort`` or ``finalize`` further writes
  raise :class:`~daemon.errors.StreamClosedError`.
- A store hands out sinks for large objects (shards, chunks) and ``put``s small ones (metadata) atomically.
- Keys are ``/``-separated relative paths, validated by :func:`parse_key`.
- Every implementation passes the same contract suite (``tests/storage/test_sink_contract.py``).
"""

from __future__ import annotations

import enum
import re
from abc import ABC, abstractmethod
from collections.abc import Sequence

from daemon.errors import ConfigError

Buffer = bytes | bytearray | memoryview

_KEY_PART = re.compile(r"^[A-Za-z0-9._-]+$")


def parse_key(key: str) -> str:
    """Validate a store key: relative, ``/``-separated, no ``..``/``.`` parts, no empty parts, safe characters."""
    if not isinstance(key, str) or not key:
        raise ConfigError(f"store key must be a non-empty string. Got {key!r} instead.")
    parts = key.split("/")
    for part in parts:
        if part in ("", ".", "..") or not _KEY_PART.match(part):
            raise ConfigError(
                f"store key {key!r} has an invalid part {part!r}: parts must be non-empty, not '.' or '..', "
                "and use only letters, digits, '.', '_' and '-'."
            )
    return key


class SinkState(enum.Enum):
    OPEN = "open"
    FINALIZED = "finalized"
    ABORTED = "aborted"


class Sink(ABC):
    """One object under construction."""

    @property
    @abstractmethod
    def key(self) -> str:
        """The store key this sink writes."""

    @property
    @abstractmethod
    def state(self) -> SinkState: ...

    @property
    def alignment(self) -> int:
        """Offsets this sink writes fastest at (a multiple of it); 1: any. Writers may leave gaps to honour it."""
        return 1

    @abstractmethod
    def write(self, offset: int, buffers: Sequence[Buffer]) -> None:
        """Write ``buffers`` back to back starting at ``offset`` (never behind what was already written).

        The buffers may be reused by the caller once this returns: a sink copies what it keeps."""

    @abstractmethod
    def finalize(self) -> None:
        """Make the object visible, complete and durable. Idempotent."""

    @abstractmethod
    def abort(self) -> None:
        """Discard the object; nothing becomes visible. Idempotent; a no-op after ``finalize``."""


class Store(ABC):
    """A namespace of keys: a local folder, an S3 prefix, or memory."""

    @property
    @abstractmethod
    def url(self) -> str:
        """Where the store is, for logs and summaries (no credentials)."""

    @abstractmethod
    def open_sink(self, key: str) -> Sink:
        """A sink that will create or replace ``key`` when finalized."""

    @abstractmethod
    def put(self, key: str, data: Buffer) -> None:
        """Create or replace ``key`` with ``data`` atomically."""

    @abstractmethod
    def get(self, key: str) -> bytes | None:
        """The bytes of ``key``, or ``None`` when absent."""

    @abstractmethod
    def is_empty(self) -> bool:
        """True when nothing exists at the store's location."""

    @abstractmethod
    def clear(self) -> None:
        """Delete everything at the store's location (for ``overwrite``)."""

    def lock(self) -> None:  # noqa: B027 - optional hook
        """Take the store for this process's writes until :meth:`close`: StoreBusyError when another process has
        it. Stores that cannot tell (S3) take nothing."""

    def close(self) -> None:  # noqa: B027 - optional hook, idempotent
        """Release resources (and the lock). Idempotent."""
