"""Store paths that escape the data root only at run time: a folder swapped for a symlink after ``validate``, or
after the run's own store check; a store path that is a FIFO, a device or a file. Nothing is written outside the
data root, nothing there is opened, cleared or replaced, and every error names the path.

The daemon cases drive a real ``acqd serve``; the swap after the run's store check drives the real :class:`Run`
and its real storage worker, the swap injected right after :func:`~daemon.run_outcome.check_store` passes (a
race a real part cannot lose on demand).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pytest_mock import MockerFixture

from daemon.errors import ConfigError, StorageError
from daemon.ipc.client import RemoteError
from daemon.profile import Profile, parse_profile
from daemon.run import Run
from daemon.run_outcome import check_store
from daemon.storage.file_store import PARTIAL_SUFFIX, FileStore
from tests.serve.daemon_process import DaemonProcess, running_daemon, sim_profile

pytestmark = pytest.mark.slow


def tree(folder: Path) -> list[str]:
    """Every entry under ``folder`` (relative), sorted."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def swap_for_symlink(folder: Path, target: Path) -> None:
    """Replace the (empty) folder ``folder`` by a symlink to ``target``."""
    folder.rmdir()
    folder.symlink_to(target, target_is_directory=True)


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaemonProcess]:
    with running_daemon(tmp_path_factory.mktemp("escapes")) as process:
        yield process


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A folder outside the data root holding one precious file."""
    folder = tmp_path / "outside"
    folder.mkdir()
    (folder / "precious.txt").write_text("keep me")
    return folder


def refused_start(daemon: DaemonProcess, text: str) -> RemoteError:
    with daemon.client(timeout_s=10.0) as client, pytest.raises(RemoteError) as caught:
        client.start(yaml=text)
    with daemon.client() as client:
        assert client.ping()
    return caught.value


def test_a_folder_swapped_for_a_symlink_after_validate_is_refused_at_start(
    daemon: DaemonProcess, outside: Path
) -> None:
    runs = daemon.data_root / "swapped"
    runs.mkdir()
    text = sim_profile("swap", frames=5, store="swapped/run.zarr")
    with daemon.client() as client:
        assert client.validate(yaml=text)["valid"] is True
    swap_for_symlink(runs, outside)
    error = refused_start(daemon, text)
    assert error.code == "invalid_profile"
    assert f"resolves to {outside / 'run.zarr'}, outside the data root" in error.message
    assert "swapped/run.zarr" in error.message
    assert tree(outside) == ["precious.txt"]


def test_a_store_that_is_itself_a_symlink_to_outside_is_never_cleared(daemon: DaemonProcess, outside: Path) -> None:
    (daemon.data_root / "linked.zarr").symlink_to(outside, target_is_directory=True)
    error = refused_start(daemon, sim_profile("linked", frames=5, store="linked.zarr"))  # overwrite: true
    assert f"resolves to {outside}, outside the data root" in error.message
    assert tree(outside) == ["precious.txt"]
    assert (outside / "precious.txt").read_text() == "keep me"


def make_fifo(path: Path) -> str:
    os.mkfifo(path)
    return "a FIFO"


def make_device(path: Path) -> str:
    if os.geteuid() != 0:
        pytest.skip("creating a device node needs root")
    os.mknod(path, stat.S_IFCHR | 0o600, os.makedev(1, 3))  # the null device's numbers
    return "a character device"


def make_file(path: Path) -> str:
    path.write_text("not a store")
    return "a file"


@pytest.mark.parametrize("make", [make_fifo, make_device, make_file], ids=["fifo", "device", "file"])
def test_a_store_path_that_is_not_a_folder_is_refused_and_left_alone(daemon: DaemonProcess, make: object) -> None:
    name = f"special-{getattr(make, '__name__', 'x')}.zarr"
    path = daemon.data_root / name
    kind = make(path)  # type: ignore[operator]
    before = path.lstat()
    error = refused_start(daemon, sim_profile("special", frames=5, store=name))  # overwrite: true
    assert error.code == "invalid_profile"
    assert f"storage.store: {path} exists and is {kind}, not a folder" in error.message
    after = path.lstat()
    assert (after.st_ino, after.st_mode, after.st_size) == (before.st_ino, before.st_mode, before.st_size)


def run_profile(data_root: Path, store: str) -> Profile:
    return parse_profile(sim_profile("race", frames=20, store=store), "race.yaml", data_root)


def test_a_symlink_swapped_in_after_the_run_checked_its_store_is_not_written_through(
    tmp_path: Path, outside: Path, mocker: MockerFixture
) -> None:
    data_root = tmp_path / "data"
    (data_root / "runs").mkdir(parents=True)
    (outside / "race.zarr").mkdir()
    (outside / "race.zarr" / "zarr.json").write_text("{}")  # what overwrite: true would clear through the symlink
    run = Run(run_profile(data_root, "runs/race.zarr"), metrics_interval_s=0.2)

    def check_then_swap(profile: Profile, **options: Any) -> None:
        check_store(profile, **options)
        swap_for_symlink(data_root / "runs", outside)

    mocker.patch("daemon.run.check_store", side_effect=check_then_swap)
    try:
        run.start()
    except StorageError as exc:
        errors = [str(exc)]
    else:
        assert run.wait(30.0)
        assert run.summary is not None
        assert run.summary["outcome"] == "failed"
        errors = [str(e) for e in run.summary["errors"]]
    assert tree(outside) == ["precious.txt", "race.zarr", "race.zarr/zarr.json"]
    assert (outside / "race.zarr" / "zarr.json").read_text() == "{}"
    assert any(f"its path now resolves to {outside / 'race.zarr'}" in e for e in errors), errors
    assert any(str(data_root / "runs" / "race.zarr") in e for e in errors), errors


def test_the_run_repeats_the_store_check_right_before_writing(tmp_path: Path, outside: Path) -> None:
    data_root = tmp_path / "data"
    (data_root / "runs").mkdir(parents=True)
    run = Run(run_profile(data_root, "runs/late.zarr"), metrics_interval_s=0.2)
    swap_for_symlink(data_root / "runs", outside)  # after the profile was loaded, before start
    with pytest.raises(ConfigError) as caught:
        run.start()
    assert f"resolves to {outside / 'late.zarr'}, outside the data root" in str(caught.value)
    assert str(data_root / "runs" / "late.zarr") in str(caught.value)
    assert tree(outside) == ["precious.txt"]


def test_a_symlink_planted_at_an_objects_partial_name_is_not_written_through(tmp_path: Path, outside: Path) -> None:
    store = FileStore(tmp_path / "data" / "planted.zarr", refuse_symlinks=True)
    (store.root / "c").mkdir(parents=True)
    (store.root / "c" / f"0{PARTIAL_SUFFIX}").symlink_to(outside / "precious.txt")
    with pytest.raises(StorageError, match=f"cannot create {store.root / 'c' / '0'}{PARTIAL_SUFFIX}"):
        store.open_sink("c/0")
    assert (outside / "precious.txt").read_text() == "keep me"
