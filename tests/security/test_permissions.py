"""Owner-only permissions of what a real ``acqd serve`` creates for itself, even under the loosest umask (0):
its runtime folder, lock file and sockets, its state folder with the run journal (``runs/`` and its entries).

Already covered elsewhere and not repeated: the runtime folder's creation and refusal rules
(tests/control/test_bind_policy.py, tests/serve/test_daemon_config.py), CURVE key files
(tests/control/test_key_files.py), the journal's modes in-process (tests/soak/test_run_journal.py).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from daemon.run_journal import ALIVE_FILE
from tests.serve.daemon_process import DaemonProcess, running_daemon, sim_profile, wait_for_state

pytestmark = pytest.mark.slow


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


@pytest.fixture(scope="module")
def loose(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaemonProcess]:
    """A daemon started under umask 0, with a state folder (``$STATE_DIRECTORY``) it must create, after one run."""
    root = tmp_path_factory.mktemp("umask0")
    previous = os.umask(0)  # inherited by the daemon at spawn
    try:
        context = running_daemon(root, env={"STATE_DIRECTORY": str(root / "state" / "acqd")})
        daemon = context.__enter__()
    finally:
        os.umask(previous)
    try:
        with daemon.client() as client:
            run_id = client.start(yaml=sim_profile("private", frames=5, store="private.zarr"))
            assert wait_for_state(client, run_id)["state"] == "finished"
        yield daemon
    finally:
        context.__exit__(None, None, None)


def test_the_runtime_folder_is_private_and_its_sockets_reachable_only_through_it(loose: DaemonProcess) -> None:
    info = loose.runtime.lstat()
    assert stat.S_ISDIR(info.st_mode)
    assert (mode(loose.runtime), info.st_uid) == (0o700, os.geteuid())
    assert mode(loose.runtime / "acqd.lock") == 0o600
    sockets = [p for p in loose.runtime.iterdir() if stat.S_ISSOCK(p.lstat().st_mode)]
    assert {p.name for p in sockets} >= {"control.sock", "events.sock"}
    assert all(p.lstat().st_uid == os.geteuid() for p in sockets)


def test_the_run_journal_is_private_under_umask_0(loose: DaemonProcess) -> None:
    runs = loose.root / "state" / "acqd" / "runs"
    entries = list(runs.glob("*.json"))
    assert len(entries) == 1
    assert mode(runs) == 0o700
    assert [mode(entry) for entry in entries] == [0o600]
    assert mode(runs / ALIVE_FILE) == 0o600  # the daemon's heartbeat
    assert not [p for p in runs.iterdir() if p.suffix != ".json" and p.name != ALIVE_FILE]  # no temporary file left


def test_the_state_folders_acqd_creates_are_not_writable_by_others(loose: DaemonProcess) -> None:
    for folder in (loose.root / "state", loose.root / "state" / "acqd"):
        assert mode(folder) & 0o022 == 0, f"{folder} is {mode(folder):04o}"
