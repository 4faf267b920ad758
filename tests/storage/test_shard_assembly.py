"""Shard assembly: the index format (crc32c, absent entries) and appends from several threads."""

from __future__ import annotations

import threading

import crc32c
import numpy as np
import pytest

from daemon.storage.memory_store import MemoryStore
from daemon.storage.shard import ABSENT, ShardBuilder, ShardIndex


def test_the_index_is_little_endian_pairs_then_crc32c() -> None:
    index = ShardIndex(3)
    index.set(1, 10, 20)
    data = index.encode()
    assert len(data) == 3 * 16 + 4
    entries = np.frombuffer(data[:-4], "<u8").reshape(3, 2)
    assert entries.tolist() == [[ABSENT, ABSENT], [10, 20], [ABSENT, ABSENT]]
    assert int.from_bytes(data[-4:], "little") == crc32c.crc32c(data[:-4])
    assert ShardIndex.decode(data).entry(1) == (10, 20)


def test_a_corrupt_index_is_detected() -> None:
    data = bytearray(ShardIndex(2).encode())
    data[0] ^= 1
    with pytest.raises(ValueError, match="checksum"):
        ShardIndex.decode(bytes(data))


def test_chunks_appended_from_threads_are_all_indexed() -> None:
    store = MemoryStore()
    builder = ShardBuilder(store, "s", chunks=40)

    def add(position: int) -> None:
        builder.add([(position, bytes([position]) * (position + 1))])

    threads = [threading.Thread(target=add, args=(p,)) for p in range(40)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    builder.finalize()
    shard = store.objects["s"]
    index = ShardIndex.decode(shard[-(40 * 16 + 4) :])
    for position in range(40):
        offset, nbytes = index.entry(position)
        assert shard[offset : offset + nbytes] == bytes([position]) * (position + 1)


def test_a_plain_chunk_has_no_index() -> None:
    store = MemoryStore()
    builder = ShardBuilder(store, "c/0", chunks=None)
    builder.add([(0, b"chunk")])
    builder.finalize()
    assert store.objects == {"c/0": b"chunk"}


def test_finalize_and_abort_are_idempotent() -> None:
    store = MemoryStore()
    builder = ShardBuilder(store, "s", chunks=1)
    builder.add([(0, b"x")])
    assert builder.finalize() == 20
    assert builder.finalize() == 0
    builder.abort()
    assert store.get("s") is not None
    other = ShardBuilder(store, "t", chunks=1)
    other.add([(0, b"x")])
    other.abort()
    other.abort()
    assert store.get("t") is None


def test_a_shard_that_never_received_data_leaves_nothing_when_aborted() -> None:
    store = MemoryStore()
    ShardBuilder(store, "s", chunks=4).abort()
    assert store.is_empty()
