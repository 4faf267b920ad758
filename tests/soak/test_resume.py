"""After a daemon crash, ``start`` with ``resume`` appends a new run to the interrupted run's store: the old frames
stay, the gap reads as the fill value and is recorded (frame table, ``acqd.resumes``, summary, ``run_resumed``), the
new run's books balance, and a run cannot be resumed twice or when it is not interrupted."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from daemon.ipc.client import Client, RemoteError
from daemon.run_journal import RunJournal
from tests.fixtures.s3 import SeaweedServer, download
from tests.fixtures.tcp_proxy import TcpProxy
from tests.pipeline.support import check_resumed_store
from tests.serve.daemon_process import DaemonProcess, sim_profile, spawn_daemon, wait_for_state

pytestmark = pytest.mark.slow

PROFILE = sim_profile("live", until_stopped=True, store="live.zarr", period_s=0.005)


def wait_recovered(client: Client, run_id: str, timeout_s: float = 30.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        runs = [r for r in client.status()["runs"] if r["run_id"] == run_id]
        if runs and runs[0]["finished_at"] is not None:
            return dict(runs[0])
        assert time.monotonic() < deadline, f"run {run_id} not recovered: {runs}"
        time.sleep(0.1)


def crash_mid_run(tmp_path: Path, state: Path) -> tuple[DaemonProcess, str]:
    """A daemon that ran ``live`` for a second, then was SIGKILLed; its runtime folder and the run id."""
    first = spawn_daemon(tmp_path, profiles={"live": PROFILE}, env={"STATE_DIRECTORY": str(state)})
    with first.client() as client:
        run_id = client.start("live")
        wait_for_state(client, run_id, ("running",))
        time.sleep(1.0)
    first.proc.send_signal(signal.SIGKILL)
    first.proc.wait(10)
    return first, run_id


def restart_after_crash(tmp_path: Path) -> tuple[DaemonProcess, DaemonProcess, str]:
    """:func:`crash_mid_run` (state in ``tmp_path/state``), then a second daemon on the same state and runtime
    folders: the crashed daemon, the new one and the run id."""
    state = tmp_path / "state"
    first, run_id = crash_mid_run(tmp_path, state)
    env = {"STATE_DIRECTORY": str(state), "RUNTIME_DIRECTORY": str(first.runtime)}
    return first, spawn_daemon(tmp_path, profiles={"live": PROFILE}, env=env), run_id


def refused(call: Any, code: str, match: str) -> None:
    with pytest.raises(RemoteError) as caught:
        call()
    assert caught.value.code == code, caught.value
    assert match in caught.value.message, caught.value.message


@pytest.mark.timeout(60)
def test_an_interrupted_run_is_resumed_into_its_store_with_the_gap_recorded(tmp_path: Path) -> None:
    first, second, run_id = restart_after_crash(tmp_path)
    try:
        with second.client(timeout_s=10.0) as client:
            interrupted = wait_recovered(client, run_id)
            assert interrupted["state"] == "interrupted"
            refused(lambda: client.resume("no-such-run"), "not_found", "no run with id 'no-such-run'")
            other = PROFILE.replace("chunk_size_px: 16", "chunk_size_px: 8")
            refused(lambda: client.resume(run_id, yaml=other), "invalid_profile", "chunk_grid is")
            moved = PROFILE.replace("live.zarr", "elsewhere.zarr")
            refused(lambda: client.resume(run_id, yaml=moved), "invalid_profile", "the profile's store is")

            new_id = client.resume(run_id)
            assert new_id != run_id
            wait_for_state(client, new_id, ("running",))
            refused(lambda: client.resume(run_id), "conflict", f"already resumed by run {new_id!r}")
            time.sleep(0.5)
            client.stop(new_id)
            status = wait_for_state(client, new_id)
            assert status["state"] == "finished", status
            assert status["resumes"] == run_id
            refused(lambda: client.resume(new_id), "conflict", "only an interrupted run can be resumed")
            listed = {r["run_id"]: r for r in client.status()["runs"]}
            assert listed[run_id]["resumed_by"] == new_id
        summary = next(e for e in second.logs() if e.get("event") == "run_summary" and e.get("run_id") == new_id)
        assert summary["balanced"]
        assert summary["delivered"] == summary["stored"] + sum(summary["dropped"].values()) > 0
        assert summary["resumes"] == run_id
        resume = summary["resume"][""]
        assert resume["claimed_before"] == interrupted["counts"]["frames_claimed"] > 0
        assert resume["at_index"] % 16 == 0  # the next chunk row along t
        assert resume["interrupted_at"] == interrupted["interrupted_at"] < interrupted["finished_at"]
        check_resumed_store(second.data_root / "live.zarr", resume, summary["stored"], (64, 64))
        event = next(e for e in second.logs() if e.get("event") == "run_resumed")
        assert event["run_id"] == new_id
        assert event["resumes"] == run_id
        assert event["arrays"][""]["at_index"] == resume["at_index"]
        journal = RunJournal(tmp_path / "state")
        assert journal.read(run_id).resumed_by == new_id  # type: ignore[union-attr]
        assert journal.read(new_id).resumes == run_id  # type: ignore[union-attr]
    finally:
        second.close()
        first.close()


@pytest.mark.s3
@pytest.mark.timeout(120)
def test_a_staged_s3_run_is_resumed_after_the_daemon_and_its_worker_died(
    tmp_path: Path, s3_server: SeaweedServer, s3_env: dict[str, str]
) -> None:
    """Power-cut-like: the daemon and its worker are SIGKILLed while S3 is unreachable, so finished objects (and
    metadata claiming them) wait in the staging folder. Recovery uploads them; a resume then appends to the S3 store
    through the same staging folder, and the store read back holds the old frames, the gap and the new frames."""
    bucket = s3_server.make_bucket()
    state, staging = tmp_path / "state", tmp_path / "staging"
    with TcpProxy("127.0.0.1", s3_server.ports["s3.port"]) as proxy:
        s3 = (
            f"\n  s3: {{endpoint: {json.dumps(proxy.endpoint)}, region: us-east-1, max_attempts: 2,"
            f" connect_timeout_s: 1.0, read_timeout_s: 2.0, staging_dir: {json.dumps(str(staging))},"
            " upload_wait_s: 30.0}"
        )
        profile = PROFILE.replace("store: live.zarr", f"store: s3://{bucket}/runs/live.zarr{s3}")
        first = spawn_daemon(tmp_path, profiles={"live": profile}, env={"STATE_DIRECTORY": str(state)})
        second: DaemonProcess | None = None
        try:
            with first.client() as client:
                run_id = client.start("live")
                wait_for_state(client, run_id, ("running",))
                time.sleep(0.5)
                proxy.black_hole()
                time.sleep(1.5)
            worker_pid = RunJournal(state).read(run_id).worker_pid  # type: ignore[union-attr]
            assert worker_pid is not None
            first.proc.send_signal(signal.SIGKILL)
            os.kill(worker_pid, signal.SIGKILL)
            first.proc.wait(10)
            assert staged_objects(staging), "the crash must leave objects waiting for upload"
            proxy.pass_through()

            env = {"STATE_DIRECTORY": str(state), "RUNTIME_DIRECTORY": str(first.runtime)}
            second = spawn_daemon(tmp_path, profiles={"live": profile}, env=env)
            with second.client(timeout_s=10.0) as client:
                interrupted = wait_recovered(client, run_id, timeout_s=60.0)
                assert interrupted["state"] == "interrupted", interrupted
                assert interrupted["counts"]["uploads_resumed"] > 0, interrupted
                assert interrupted["counts"]["frames_claimed"] > 0, interrupted
                assert not interrupted["errors"], interrupted
                new_id = client.resume(run_id)
                wait_for_state(client, new_id, ("running",))
                time.sleep(0.5)
                client.stop(new_id)
                status = wait_for_state(client, new_id, timeout_s=60.0)
                assert status["state"] == "finished", status
            summary = next(e for e in second.logs() if e.get("event") == "run_summary" and e.get("run_id") == new_id)
            assert summary["balanced"]
            assert summary["delivered"] == summary["stored"] + sum(summary["dropped"].values()) > 0
            resume = summary["resume"][""]
            assert resume["claimed_before"] == interrupted["counts"]["frames_claimed"]
            assert not staged_objects(staging), "every staged object is uploaded once the resumed run ended"
            assert s3_server.uploads(bucket) == []
            copy = tmp_path / "copy.zarr"
            download(s3_server, bucket, "runs/live.zarr", copy)
            check_resumed_store(copy, resume, summary["stored"], (64, 64))
        finally:
            if second is not None:
                second.close()
            first.close()


def staged_objects(staging: Path) -> list[Path]:
    """Objects waiting for upload in a staging folder (``<store>/pending/<key>.<seq>.<data|meta>``)."""
    return [p for p in staging.glob("*/pending/**/*") if p.is_file() and p.suffix in (".data", ".meta")]
