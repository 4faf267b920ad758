"""The control server's reply cache: encoded replies by request key, bounded in entries and in bytes.

Design notes:
- Each entry keeps the request's fingerprint (command and args), so a retry with the same id is answered from the
  cache only when it is the same request.
- Least recently used entries are evicted first. The byte bound matters: a ``status`` of every run kept is tens of
  KiB, and a client polling it would otherwise fill the entries with them.
"""

from __future__ import annotations

import collections

DEFAULT_REPLY_CACHE = 1024
DEFAULT_REPLY_CACHE_BYTES = 4 * 1024 * 1024


class ReplyCache:
    """Encoded replies by request key with the request fingerprint; least recently used evicted first, once more
    than ``capacity`` entries or ``max_bytes`` of replies are kept (the newest entry is always kept)."""

    def __init__(self, capacity: int, max_bytes: int = DEFAULT_REPLY_CACHE_BYTES) -> None:
        self._capacity = capacity
        self._max_bytes = max_bytes
        self._bytes = 0
        self._entries: collections.OrderedDict[str, tuple[str, bytes]] = collections.OrderedDict()

    def get(self, key: str) -> tuple[str, bytes] | None:
        entry = self._entries.get(key)
        if entry is not None:
            self._entries.move_to_end(key)
        return entry

    def put(self, key: str, fingerprint: str, data: bytes) -> None:
        previous = self._entries.get(key)
        self._bytes += len(data) - (0 if previous is None else len(previous[1]))
        self._entries[key] = (fingerprint, data)
        self._entries.move_to_end(key)
        while len(self._entries) > 1 and (len(self._entries) > self._capacity or self._bytes > self._max_bytes):
            _, (_, evicted) = self._entries.popitem(last=False)
            self._bytes -= len(evicted)

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def nbytes(self) -> int:
        """The bytes of the replies kept."""
        return self._bytes
