"""Assembly of one storage object: a v3 shard (chunks back to back, then the index) or a single plain chunk.

Design notes (after acquire-zarr's ``shard``):
- Chunks are appended at the end of the object as they are compressed, in whatever order the workers finish; the
  shard index (``sharding_indexed``, index at the end) records where each landed. An index entry is
  ``(offset, nbytes)`` as little-endian uint64, ``2**64-1`` twice for an absent chunk, followed by the crc32c of
  the entries (little-endian uint32).
- Several worker threads may add chunks to one shard: each appends under the shard's lock with one vectored
  write, so the sink sees increasing offsets. ``finalize`` writes the index and makes the object visible; it and
  ``abort`` are idempotent. A plain chunk is an object of one chunk without an index.
- A sink with an ``alignment`` (a local file written with ``O_DIRECT``) gets a chunk of ``MIN_ALIGNED_BYTES`` or
  more, added alone, at an aligned offset: the gap before it (< 4 KiB) reads as zeros and no index entry points
  into it (readers follow the index only). Smaller chunks stay back to back: aligning them would waste space.
- The sink is opened on the first write, so a shard that never receives data leaves nothing behind.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

import crc32c
import numpy as np

from daemon.storage.sink import Buffer, Sink, SinkState, Store

ABSENT = 2**64 - 1
MIN_ALIGNED_BYTES = 1 << 20  # a chunk this large is worth aligning for its sink (the gap costs < 0.4%)


class ShardIndex:
    """The ``(offset, nbytes)`` table of a shard's chunks, in C order of the shard's chunk grid."""

    def __init__(self, chunks: int) -> None:
        self._entries = np.full((chunks, 2), ABSENT, dtype="<u8")

    def __len__(self) -> int:
        return len(self._entries)

    def set(self, position: int, offset: int, nbytes: int) -> None:
        self._entries[position] = (offset, nbytes)

    def entry(self, position: int) -> tuple[int, int]:
        offset, nbytes = self._entries[position]
        return int(offset), int(nbytes)

    def encode(self) -> bytes:
        body = self._entries.tobytes()
        return body + crc32c.crc32c(body).to_bytes(4, "little")

    @classmethod
    def decode(cls, data: bytes) -> ShardIndex:
        """Parse an encoded index (checks the checksum); for tests and tools."""
        body, checksum = data[:-4], int.from_bytes(data[-4:], "little")
        if crc32c.crc32c(body) != checksum:
            raise ValueError("shard index checksum mismatch")
        index = cls(len(body) // 16)
        index._entries[:] = np.frombuffer(body, dtype="<u8").reshape(-1, 2)
        return index


class ShardBuilder:
    """One object (shard or plain chunk) under construction on a :class:`Store`."""

    def __init__(self, store: Store, key: str, chunks: int | None) -> None:
        """``chunks``: chunks per shard, or None for a plain chunk (no index)."""
        self._store = store
        self._key = key
        self._lock = threading.Lock()
        self._sink: Sink | None = None
        self._offset = 0
        self._index = ShardIndex(chunks) if chunks is not None else None
        self._done = False

    @property
    def key(self) -> str:
        return self._key

    @property
    def index(self) -> ShardIndex | None:
        return self._index

    def add(self, chunks: Sequence[tuple[int, Buffer]]) -> int:
        """Append encoded chunks ``(position in the shard, bytes)``; returns the bytes written. Thread-safe."""
        if not chunks:
            return 0
        with self._lock:
            sink = self._open()
            start = self._offset
            align = sink.alignment
            if align > 1 and len(chunks) == 1 and memoryview(chunks[0][1]).nbytes >= MIN_ALIGNED_BYTES:
                offset = -(-start // align) * align  # the gap before it reads as zeros, and no entry points there
                self._place(chunks[0][0], offset, chunks[0][1])
                sink.write(offset, [chunks[0][1]])
            else:  # back to back, one vectored write
                for position, data in chunks:
                    self._place(position, self._offset, data)
                sink.write(start, [data for _, data in chunks])
            return self._offset - start

    def _place(self, position: int, offset: int, data: Buffer) -> None:
        nbytes = memoryview(data).nbytes
        if self._index is not None:
            self._index.set(position, offset, nbytes)
        self._offset = offset + nbytes

    def finalize(self) -> int:
        """Write the index (shards) and make the object visible and durable; returns the bytes written. Idempotent."""
        with self._lock:
            if self._done:
                return 0
            sink = self._open()
            written = 0
            if self._index is not None:
                tail = self._index.encode()
                sink.write(self._offset, [tail])
                written = len(tail)
            sink.finalize()
            self._done = True
            return written

    def abort(self) -> None:
        """Discard the object (a no-op once finalized). Idempotent."""
        with self._lock:
            if self._sink is not None and self._sink.state is SinkState.OPEN:
                self._sink.abort()
            self._done = True

    def _open(self) -> Sink:
        if self._sink is None:
            self._sink = self._store.open_sink(self._key)
        return self._sink
