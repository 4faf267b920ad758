"""After a daemon crash (SIGKILL) mid-run, a restarted daemon finds the run in its journal, finalises the store
(the orphaned worker closes it; stale ``*.partial`` files are removed) and lists the run as ``interrupted`` with
the frames the store claims; the store reads back exactly; a new run on the same store starts once recovered."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest

from daemon.run_journal import RunJournal
from tests.serve.daemon_process import (
    assert_store_matches_pattern,
    sim_profile,
    spawn_daemon,
    wait_for_state,
)
from tests.soak.store_check import check_store, stale_files

pytestmark = pytest.mark.slow


def wait_recovered(client: object, run_id: str, timeout_s: float = 60.0) -> dict:
    deadline = time.monotonic() + timeout_s
    while True:
        runs = [r for r in client.status()["runs"] if r["run_id"] == run_id]  # type: ignore[attr-defined]
        if runs and runs[0]["finished_at"] is not None:
            return dict(runs[0])
        assert time.monotonic() < deadline, f"run {run_id} not recovered: {runs}"
        time.sleep(0.1)


@pytest.mark.timeout(120)
def test_a_run_interrupted_by_a_crash_is_recovered_and_reported(tmp_path: Path) -> None:
    profiles = {"live": sim_profile("live", until_stopped=True, store="live.zarr", period_s=0.005)}
    state = tmp_path / "state"
    first = spawn_daemon(tmp_path, profiles=profiles, env={"STATE_DIRECTORY": str(state)})
    second = None
    try:
        with first.client() as client:
            run_id = client.start("live")
            wait_for_state(client, run_id, ("running",))
            time.sleep(1.0)
        assert RunJournal(state).read(run_id).state == "running"  # type: ignore[union-attr]
        store = first.data_root / "live.zarr"
        (store / "0" / "c" / "999.partial").parent.mkdir(parents=True, exist_ok=True)
        (store / "0" / "c" / "999.partial").write_bytes(b"half a shard")  # as a crash mid-write leaves
        killed_at = time.time()
        first.proc.send_signal(signal.SIGKILL)
        first.proc.wait(10)
        time.sleep(1.0)  # the restart comes later: the crash time must not be read as the recovery time
        env = {"STATE_DIRECTORY": str(state), "RUNTIME_DIRECTORY": str(first.runtime)}
        restarted_at = time.time()
        second = spawn_daemon(tmp_path, profiles=profiles, env=env)
        with second.client() as client:
            run = wait_recovered(client, run_id)
            assert run["state"] == "interrupted"
            # the crashed daemon's last heartbeat (every 0.5 s loop tick; slack for a loaded machine)
            assert killed_at - 2.0 <= run["interrupted_at"] <= killed_at, (killed_at, run)
            assert run["interrupted_at"] >= run["started_at"]
            assert run["finished_at"] >= restarted_at
            assert run["counts"]["partial_removed"] >= 1
            assert stale_files(store) == []
            assert run["counts"]["frames_claimed"] == assert_store_matches_pattern(store) > 0
            assert run["counts"]["table_rows"] <= run["counts"]["frames_claimed"]
            assert check_store(store).ok, check_store(store).problems
            again = client.start("live")  # the store is free again (overwrite: true)
            wait_for_state(client, again, ("running",))
            client.stop(again)
            assert wait_for_state(client, again)["state"] == "finished"
        assert RunJournal(state).read(run_id).state == "interrupted"  # type: ignore[union-attr]
        assert any(e.get("event") == "runs_interrupted" for e in second.logs())
    finally:
        if second is not None:
            second.close()
        first.close()


@pytest.mark.timeout(60)
def test_a_daemon_leaves_its_heartbeat_before_it_answers(tmp_path: Path) -> None:
    """A run started right after start-up is dated by this daemon's heartbeat if it crashes: the first beat is
    written before the control socket answers, not a loop tick later."""
    state = tmp_path / "state"
    daemon = spawn_daemon(tmp_path, env={"STATE_DIRECTORY": str(state)})  # returns once a ping is answered
    try:
        alive = RunJournal(state).last_alive()
        assert alive is not None, "no heartbeat when the daemon first answered"
        assert alive.pid == daemon.proc.pid
    finally:
        daemon.close()
