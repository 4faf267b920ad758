"""The local-disk store: the shared contract, plus what only a folder shows (``.partial`` files, paths in errors)."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest
from pytest_mock import MockerFixture

from daemon.errors import ConfigError, StorageError, StreamClosedError
from daemon.storage.file_store import FileStore
from daemon.storage.sink import SinkState
from tests.storage.sink_contract import SinkContract, StoreContract


class TestFileStoreContract(StoreContract, SinkContract):
    @pytest.fixture
    def store(self, tmp_path: Path) -> FileStore:
        return FileStore(tmp_path / "store.zarr")


def files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def test_an_open_sink_is_a_partial_file_renamed_on_finalize(tmp_path: Path) -> None:
    store = FileStore(tmp_path)
    sink = store.open_sink("a/c/0/0")
    sink.write(0, [b"xyz"])
    assert files(tmp_path) == ["a/c/0/0.partial"]
    sink.finalize()
    assert files(tmp_path) == ["a/c/0/0"]


def test_abort_removes_the_partial_file(tmp_path: Path) -> None:
    store = FileStore(tmp_path)
    sink = store.open_sink("a/b")
    sink.write(0, [b"xyz"])
    sink.abort()
    assert files(tmp_path) == []


def test_put_leaves_no_temporary_file(tmp_path: Path) -> None:
    store = FileStore(tmp_path)
    store.put("g/zarr.json", b"{}")
    store.put("g/zarr.json", b"{ }")
    assert files(tmp_path) == ["g/zarr.json"]


def test_a_file_where_a_folder_should_be_raises_storage_error_with_the_path(tmp_path: Path) -> None:
    (tmp_path / "a").write_bytes(b"in the way")
    store = FileStore(tmp_path)
    with pytest.raises(StorageError, match=str(tmp_path / "a")):
        store.open_sink("a/c/0")
    with pytest.raises(StorageError, match=str(tmp_path / "a")):
        store.put("a/zarr.json", b"{}")


def test_a_failed_write_is_sticky_and_leaves_no_partial_file(tmp_path: Path, mocker: MockerFixture) -> None:
    store = FileStore(tmp_path)
    sink = store.open_sink("k")
    sink.write(0, [b"ok"])
    mocker.patch("daemon.storage.file_store.os.pwritev", side_effect=OSError(errno.ENOSPC, "No space left on device"))
    with pytest.raises(StorageError, match=r"No space left.*") as failure:
        sink.write(2, [b"more"])
    assert str(tmp_path / "k.partial") in str(failure.value)
    mocker.stopall()
    assert sink.state is SinkState.ABORTED
    with pytest.raises(StreamClosedError, match="failed earlier"):
        sink.write(2, [b"more"])
    with pytest.raises(StreamClosedError):
        sink.finalize()
    assert files(tmp_path) == []


def test_short_writes_are_completed(tmp_path: Path, mocker: MockerFixture) -> None:
    real = os.pwritev

    def one_byte_at_a_time(fd: int, buffers: list[memoryview], offset: int) -> int:
        return real(fd, [bytes(buffers[0][:1])], offset)

    store = FileStore(tmp_path)
    sink = store.open_sink("k")
    mocker.patch("daemon.storage.file_store.os.pwritev", side_effect=one_byte_at_a_time)
    sink.write(0, [b"abc", b"", b"de"])
    mocker.stopall()
    sink.finalize()
    assert store.get("k") == b"abcde"


def test_is_empty_for_a_missing_path_and_an_empty_folder(tmp_path: Path) -> None:
    assert FileStore(tmp_path / "missing").is_empty()
    (tmp_path / "empty").mkdir()
    assert FileStore(tmp_path / "empty").is_empty()
    (tmp_path / "file").write_bytes(b"x")
    assert not FileStore(tmp_path / "file").is_empty()


def test_clear_removes_a_file_at_the_store_path(tmp_path: Path) -> None:
    (tmp_path / "file").write_bytes(b"x")
    store = FileStore(tmp_path / "file")
    store.clear()
    assert store.is_empty()


def test_clear_refuses_the_home_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))  # a failing guard would only remove this test's folder
    (tmp_path / "precious").write_bytes(b"x")
    with pytest.raises(ConfigError, match="refusing to clear"):
        FileStore(Path("~").expanduser()).clear()
    assert (tmp_path / "precious").exists()
