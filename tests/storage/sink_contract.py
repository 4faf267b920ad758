"""The contract every Store and Sink passes (file, memory, S3): subclass once per backend.

Usage::

    class TestMyStore(StoreContract, SinkContract):
        @pytest.fixture
        def store(self, tmp_path) -> Store:
            return MyStore(...)  # fresh and empty for each test

``behind_size`` is how many bytes a sink must have been given before a write at offset 0 is certainly behind
what it already flushed (a file flushes at once; an S3 sink only when a part is full, so the S3 subclass sets it
above ``part_size``).
"""

from __future__ import annotations

import pytest

from daemon.errors import ConfigError, StorageError, StreamClosedError
from daemon.storage.sink import SinkState, Store


class StoreContract:
    """Small objects: put/get/is_empty/clear."""

    @pytest.fixture
    def store(self) -> Store:
        raise NotImplementedError("subclasses provide a fresh, empty store")

    def test_a_new_store_is_empty(self, store: Store) -> None:
        assert store.is_empty()

    def test_get_of_a_missing_key_is_none(self, store: Store) -> None:
        assert store.get("missing/zarr.json") is None

    def test_put_then_get_returns_the_bytes(self, store: Store) -> None:
        store.put("a/b/zarr.json", b'{"x": 1}')
        assert store.get("a/b/zarr.json") == b'{"x": 1}'
        assert not store.is_empty()

    def test_put_accepts_bytearray_and_memoryview(self, store: Store) -> None:
        store.put("one", bytearray(b"12"))
        store.put("two", memoryview(b"345"))
        assert (store.get("one"), store.get("two")) == (b"12", b"345")

    def test_put_replaces_an_existing_key(self, store: Store) -> None:
        store.put("k", b"old")
        store.put("k", b"new")
        assert store.get("k") == b"new"

    def test_clear_removes_everything(self, store: Store) -> None:
        store.put("a/zarr.json", b"1")
        store.put("b/c/d", b"2")
        store.clear()
        assert store.is_empty()
        assert store.get("a/zarr.json") is None

    @pytest.mark.parametrize("key", ["", "/abs", "a//b", "a/../b", "a/./b", "sp ace"])
    def test_an_invalid_key_is_refused(self, store: Store, key: str) -> None:
        with pytest.raises(ConfigError, match="key"):
            store.put(key, b"x")

    def test_close_is_idempotent(self, store: Store) -> None:
        store.close()
        store.close()

    def test_url_names_the_location(self, store: Store) -> None:
        assert isinstance(store.url, str)
        assert store.url


class SinkContract:
    """Large objects: write at offsets, then finalize (visible at once) or abort (nothing left)."""

    behind_size = 4096

    @pytest.fixture
    def store(self) -> Store:
        raise NotImplementedError("subclasses provide a fresh, empty store")

    def test_writes_at_increasing_offsets_make_the_object(self, store: Store) -> None:
        sink = store.open_sink("arr/c/0/0")
        sink.write(0, [b"abc"])
        sink.write(3, [b"de", bytearray(b"f"), memoryview(b"gh")])
        sink.finalize()
        assert store.get("arr/c/0/0") == b"abcdefgh"

    def test_a_gap_reads_as_zeros(self, store: Store) -> None:
        sink = store.open_sink("k")
        sink.write(0, [b"ab"])
        sink.write(5, [b"cd"])
        sink.finalize()
        assert store.get("k") == b"ab\0\0\0cd"

    def test_the_object_is_invisible_until_finalize(self, store: Store) -> None:
        sink = store.open_sink("k")
        sink.write(0, [b"data"])
        assert store.get("k") is None
        sink.finalize()
        assert store.get("k") == b"data"

    def test_finalize_replaces_an_existing_object_at_once(self, store: Store) -> None:
        store.put("k", b"old")
        sink = store.open_sink("k")
        sink.write(0, [b"new!"])
        assert store.get("k") == b"old"
        sink.finalize()
        assert store.get("k") == b"new!"

    def test_a_write_behind_what_was_flushed_is_refused(self, store: Store) -> None:
        sink = store.open_sink("k")
        block = bytes(range(256)) * (self.behind_size // 256 + 1)
        sink.write(0, [block])
        sink.write(len(block), [block])
        with pytest.raises(StorageError):
            sink.write(0, [b"x"])
        sink.finalize()
        assert store.get("k") == block + block

    def test_an_empty_sink_finalizes_an_empty_object(self, store: Store) -> None:
        sink = store.open_sink("k")
        sink.finalize()
        assert store.get("k") == b""

    def test_key_and_state_follow_the_lifecycle(self, store: Store) -> None:
        sink = store.open_sink("a/b")
        assert sink.key == "a/b"
        assert sink.state is SinkState.OPEN
        sink.finalize()
        assert sink.state is SinkState.FINALIZED

    def test_finalize_is_idempotent(self, store: Store) -> None:
        sink = store.open_sink("k")
        sink.write(0, [b"x"])
        sink.finalize()
        sink.finalize()
        assert store.get("k") == b"x"

    def test_abort_leaves_nothing(self, store: Store) -> None:
        sink = store.open_sink("deep/k")
        sink.write(0, [b"x" * 100])
        sink.abort()
        assert sink.state is SinkState.ABORTED
        assert store.get("deep/k") is None

    def test_abort_keeps_an_existing_object(self, store: Store) -> None:
        store.put("k", b"old")
        sink = store.open_sink("k")
        sink.write(0, [b"new"])
        sink.abort()
        assert store.get("k") == b"old"

    def test_abort_is_idempotent(self, store: Store) -> None:
        sink = store.open_sink("k")
        sink.abort()
        sink.abort()
        assert sink.state is SinkState.ABORTED

    def test_abort_after_finalize_is_a_no_op(self, store: Store) -> None:
        sink = store.open_sink("k")
        sink.write(0, [b"x"])
        sink.finalize()
        sink.abort()
        assert sink.state is SinkState.FINALIZED
        assert store.get("k") == b"x"

    def test_write_after_finalize_raises_stream_closed(self, store: Store) -> None:
        sink = store.open_sink("k")
        sink.finalize()
        with pytest.raises(StreamClosedError):
            sink.write(0, [b"x"])

    def test_write_after_abort_raises_stream_closed(self, store: Store) -> None:
        sink = store.open_sink("k")
        sink.abort()
        with pytest.raises(StreamClosedError):
            sink.write(0, [b"x"])

    def test_finalize_after_abort_raises_stream_closed(self, store: Store) -> None:
        sink = store.open_sink("k")
        sink.abort()
        with pytest.raises(StreamClosedError):
            sink.finalize()
        assert store.get("k") is None
