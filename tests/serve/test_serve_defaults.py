"""``acqd serve`` with no configuration at all: sockets in the runtime folder, profiles from ./config/profiles,
stores under $ACQD_DATA_ROOT."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.serve.daemon_process import assert_store_matches_pattern, running_daemon, sim_profile, wait_for_state

pytestmark = pytest.mark.slow


def test_every_default(tmp_path: Path) -> None:
    profiles = tmp_path / "config" / "profiles"
    profiles.mkdir(parents=True)
    (profiles / "sim.yaml").write_text(sim_profile("sim", frames=8, store="default.zarr"))
    env = {"ACQD_DATA_ROOT": str(tmp_path / "elsewhere")}
    with running_daemon(tmp_path, no_config=True, env=env) as daemon, daemon.client() as client:
        assert client.status()["daemon"]["endpoint"] == f"ipc://{daemon.runtime}/control.sock"
        assert [profile["path"] for profile in client.profiles()] == [str(profiles / "sim.yaml")]
        run = wait_for_state(client, client.start("sim"))
        assert run["store"] == str(tmp_path / "elsewhere" / "default.zarr")
        assert assert_store_matches_pattern(Path(run["store"])) == 8
        assert (daemon.runtime / "events.sock").is_socket()
        assert (daemon.runtime / "acqd.lock").read_text().strip() == str(daemon.proc.pid)
