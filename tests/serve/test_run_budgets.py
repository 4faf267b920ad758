"""The daemon's budgets: live runs (``runs.max_runs``) and memory (``runs.memory_bytes``) make a start
``unavailable`` while they are in use; a profile that exceeds a budget on its own (memory, or
``runs.max_queue_bytes``) is ``invalid_profile``; the history of finished runs is bounded (``runs.history``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from daemon.ipc.client import Client, RemoteError
from tests.serve.daemon_process import TERMINAL, running_daemon, sim_profile, wait_for_state

pytestmark = pytest.mark.slow

CONFIG = {"runs": "{max_runs: 2, memory_bytes: 12 MiB, max_queue_bytes: 32 MiB, history: 2, stop_timeout_s: 20.0}"}
PROFILES = {
    "big_live": sim_profile("a", until_stopped=True, store="a.zarr", queue="8 MiB"),  # 9.25 MiB in all
    "small_live": sim_profile("b", until_stopped=True, store="b.zarr", queue="1 MiB"),
    "big": sim_profile("c", frames=5, store="c.zarr", queue="8 MiB"),
    "small": sim_profile("d", frames=5, store="d.zarr", queue="1 MiB"),
    "too_big": sim_profile("e", frames=5, store="e.zarr", queue="16 MiB"),
    "queue_too_big": sim_profile("f", frames=5, store="f.zarr", queue="64 MiB"),
}


def refused(client: Client, name: str) -> RemoteError:
    with pytest.raises(RemoteError) as caught:
        client.start(name)
    return caught.value


def refused_validation(client: Client, name: str) -> RemoteError:
    with pytest.raises(RemoteError) as caught:
        client.validate(name)
    return caught.value


def test_budgets_and_history(tmp_path: Path) -> None:
    with running_daemon(tmp_path, profiles=PROFILES, config=CONFIG) as daemon, daemon.client() as client:
        for name, limit in (("too_big", "runs.memory_bytes"), ("queue_too_big", "runs.max_queue_bytes")):
            for error in (refused(client, name), refused_validation(client, name)):
                assert error.code == "invalid_profile"
                assert limit in error.message
        live = [client.start("big_live")]
        error = refused(client, "big")  # 9.25 MiB live: 9.25 more do not fit in 12 MiB
        assert error.code == "unavailable"
        assert "runs.memory_bytes" in error.message
        live.append(client.start("small_live"))  # 2.25 MiB more do
        error = refused(client, "small")  # it would fit too, but two runs are live
        assert error.code == "unavailable"
        assert "limit is 2" in error.message
        for run_id in live:
            client.stop(run_id)
            assert wait_for_state(client, run_id)["state"] == "finished"
        last = client.start("small")
        assert wait_for_state(client, last)["state"] == "finished"
        finished = [run["run_id"] for run in client.status()["runs"] if run["state"] in TERMINAL]
        assert finished == [last, live[1]]  # newest first, at most runs.history
