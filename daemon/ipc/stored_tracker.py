"""The worker's side of stored acknowledgements: per-array "first n frames stored" counts -> one seq watermark.

Design notes:
- The storage engine reports durability per array key (``ZarrStream.frames_stored(key)``: the first n frames
  appended to that key are durably stored). Frames of several keys interleave on one link, so this turns those
  counts into the one number the sender needs: ``next_seq``, below which every sequence number is *resolved*
  (stored, or reported LOST). STORED carries it; it never passes a frame that is merely received.
- Frames of one key must be appended in the order they arrived (they do: the link is ordered).
- Not thread-safe on purpose: the receiver calls it under its own lock.
"""

from __future__ import annotations

import collections
import heapq

from daemon.errors import ConfigError


class StoredTracker:
    """Which sequence numbers are resolved, as a cumulative watermark."""

    def __init__(self) -> None:
        self._pending: dict[str, collections.deque[int]] = {}
        self._stored: dict[str, int] = {}
        self._appended: dict[str, int] = {}
        self._resolved: list[int] = []  # heap of resolved seqs at or above the watermark
        self._next_seq = 0

    @property
    def next_seq(self) -> int:
        """Every sequence number below this one is stored or reported lost."""
        return self._next_seq

    def appended(self, key: str, seq: int) -> None:
        """Frame ``seq`` was handed to storage as the next frame of array ``key``."""
        self._pending.setdefault(key, collections.deque()).append(seq)
        self._appended[key] = self._appended.get(key, 0) + 1

    def resolve(self, first_seq: int, count: int = 1) -> bool:
        """These frames will never be stored (they were reported LOST). Returns whether the watermark moved."""
        for seq in range(first_seq, first_seq + count):
            heapq.heappush(self._resolved, seq)
        return self._advance()

    def stored(self, key: str, frames_stored: int) -> bool:
        """The first ``frames_stored`` frames appended to ``key`` are stored. Returns whether the watermark moved."""
        before = self._stored.get(key, 0)
        appended = self._appended.get(key, 0)
        if not isinstance(frames_stored, int) or not before <= frames_stored <= appended:
            raise ConfigError(
                f"frames_stored of key {key!r} must be an integer between {before} (reported before) and "
                f"{appended} (frames appended). Got {frames_stored!r} instead."
            )
        pending = self._pending.setdefault(key, collections.deque())
        for _ in range(frames_stored - before):
            heapq.heappush(self._resolved, pending.popleft())
        self._stored[key] = frames_stored
        return self._advance()

    def _advance(self) -> bool:
        start = self._next_seq
        resolved = self._resolved
        while resolved and resolved[0] <= self._next_seq:
            if heapq.heappop(resolved) == self._next_seq:
                self._next_seq += 1
        return self._next_seq != start
