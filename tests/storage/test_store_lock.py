"""One writer per local store: the lock a storage worker takes on the store's folder, seen from another process
(refused before anything is written or cleared), released when the holder closes the store or dies."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from daemon.errors import StoreBusyError
from daemon.storage.file_store import FileStore

REPO_ROOT = Path(__file__).resolve().parents[2]
HOLDER = """
import sys
from daemon.storage.file_store import FileStore
store = FileStore(sys.argv[1])
store.lock()
store.put("zarr.json", b"{}")
print("locked", flush=True)
sys.stdin.read()
"""


@pytest.fixture
def holder(tmp_path: Path) -> Iterator[subprocess.Popen[str]]:
    """Another process holding the lock of ``tmp_path / "held.zarr"`` (with one object in it) until killed."""
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(tmp_path / "held.zarr")],
        cwd=REPO_ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "locked"
    with proc:  # closes its pipes
        yield proc
        proc.kill()


def test_a_store_another_process_writes_is_refused_and_left_alone(
    tmp_path: Path, holder: subprocess.Popen[str]
) -> None:
    root = tmp_path / "held.zarr"
    second = FileStore(root)
    with pytest.raises(StoreBusyError, match=f"store {root} is being written by another acqd process"):
        second.lock()
    with pytest.raises(StoreBusyError):
        second.check_free()
    with pytest.raises(StoreBusyError):
        second.clear()  # an overwriting run must not delete what a live one writes
    assert (root / "zarr.json").read_bytes() == b"{}"


def test_the_lock_dies_with_its_process(tmp_path: Path, holder: subprocess.Popen[str]) -> None:
    holder.send_signal(signal.SIGKILL)
    holder.wait(10)
    store = FileStore(tmp_path / "held.zarr")
    store.check_free()
    store.lock()
    store.close()


def test_close_releases_the_lock_and_is_idempotent(tmp_path: Path) -> None:
    first, second = FileStore(tmp_path / "s.zarr"), FileStore(tmp_path / "s.zarr")
    first.lock()
    first.lock()  # idempotent: still one lock
    with pytest.raises(StoreBusyError):
        second.lock()  # another open of the folder conflicts, even in one process
    first.close()
    first.close()
    second.lock()
    second.close()


def test_a_missing_store_is_free_and_lock_creates_its_folder(tmp_path: Path) -> None:
    store = FileStore(tmp_path / "deep" / "new.zarr")
    store.check_free()
    assert not (tmp_path / "deep").exists()
    store.lock()
    assert (tmp_path / "deep" / "new.zarr").is_dir()
    store.close()


def test_clear_empties_the_locked_folder_and_keeps_the_lock(tmp_path: Path) -> None:
    root = tmp_path / "s.zarr"
    store = FileStore(root)
    store.lock()
    store.put("0/c/0/0", b"x")
    store.put("zarr.json", b"{}")
    inode = root.stat().st_ino
    store.clear()
    assert root.is_dir()
    assert not any(root.iterdir())
    assert root.stat().st_ino == inode  # the same folder: the lock still covers it
    with pytest.raises(StoreBusyError):
        FileStore(root).lock()
    store.close()
