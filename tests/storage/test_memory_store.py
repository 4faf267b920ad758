"""The in-memory store passes the same contract as the file and S3 stores."""

from __future__ import annotations

import pytest

from daemon.storage.memory_store import MemoryStore
from tests.storage.sink_contract import SinkContract, StoreContract


class TestMemoryStoreContract(StoreContract, SinkContract):
    @pytest.fixture
    def store(self) -> MemoryStore:
        return MemoryStore()


def test_objects_is_a_snapshot() -> None:
    store = MemoryStore()
    store.put("a", b"1")
    snapshot = store.objects
    store.put("b", b"2")
    assert snapshot == {"a": b"1"}
