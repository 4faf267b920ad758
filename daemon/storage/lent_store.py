"""A store lent to another owner: the borrower's ``close`` (the :class:`~daemon.storage.sink.Store` default, a
no-op here) leaves it open for the lender, who closes it last."""

from __future__ import annotations

from daemon.storage.sink import Buffer, Sink, Store


class LentStore(Store):
    """The run's store as lent to the ZarrStream: closing the stream leaves it open, so the frame tables finish on
    the same store (one S3 client, one staging journal); the worker closes it last."""

    def __init__(self, store: Store) -> None:
        self._store = store

    @property
    def url(self) -> str:
        return self._store.url

    def open_sink(self, key: str) -> Sink:
        return self._store.open_sink(key)

    def put(self, key: str, data: Buffer) -> None:
        self._store.put(key, data)

    def get(self, key: str) -> bytes | None:
        return self._store.get(key)

    def is_empty(self) -> bool:
        return self._store.is_empty()

    def clear(self) -> None:
        self._store.clear()
