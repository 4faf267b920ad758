"""An in-memory :class:`Store` (a dict of bytes), for unit tests and tools; thread-safe.

It follows the same contract as the file and S3 stores: a sink's bytes become visible only on ``finalize``, a
write behind what was written raises :class:`~daemon.errors.StorageError`, a gap reads as zeros.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

from daemon.errors import StorageError, StreamClosedError
from daemon.storage.sink import Buffer, Sink, SinkState, Store, parse_key


class MemorySink(Sink):
    def __init__(self, store: MemoryStore, key: str) -> None:
        self._store = store
        self._key = key
        self._data = bytearray()
        self._state = SinkState.OPEN

    @property
    def key(self) -> str:
        return self._key

    @property
    def state(self) -> SinkState:
        return self._state

    def write(self, offset: int, buffers: Sequence[Buffer]) -> None:
        self._check_open("write")
        if offset < len(self._data):
            raise StorageError(
                f"write at offset {offset} of memory://{self._key} is behind the {len(self._data)} bytes written."
            )
        self._data.extend(bytes(offset - len(self._data)))
        for buffer in buffers:
            self._data += memoryview(buffer).cast("B")

    def finalize(self) -> None:
        if self._state is SinkState.FINALIZED:
            return
        self._check_open("finalize")
        self._store.put(self._key, bytes(self._data))
        self._data = bytearray()
        self._state = SinkState.FINALIZED

    def abort(self) -> None:
        if self._state is SinkState.OPEN:
            self._state = SinkState.ABORTED
            self._data = bytearray()

    def _check_open(self, action: str) -> None:
        if self._state is not SinkState.OPEN:
            raise StreamClosedError(f"cannot {action} memory://{self._key}: the sink is {self._state.value}.")


class MemoryStore(Store):
    def __init__(self) -> None:
        self._objects: dict[str, bytes] = {}
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return "memory://"

    @property
    def objects(self) -> dict[str, bytes]:
        """A snapshot of every key and its bytes."""
        with self._lock:
            return dict(self._objects)

    def open_sink(self, key: str) -> MemorySink:
        return MemorySink(self, parse_key(key))

    def put(self, key: str, data: Buffer) -> None:
        parse_key(key)
        with self._lock:
            self._objects[key] = bytes(data)

    def get(self, key: str) -> bytes | None:
        with self._lock:
            return self._objects.get(parse_key(key))

    def is_empty(self) -> bool:
        with self._lock:
            return not self._objects

    def clear(self) -> None:
        with self._lock:
            self._objects.clear()
