"""A run streaming into S3 (the SeaweedFS fixture): every frame reads back (from a byte-for-byte copy of the
objects, as in tests/storage/test_s3_zarr_roundtrip.py); a failing preflight stops the run before any camera or
worker starts."""

from __future__ import annotations

from pathlib import Path

import pytest
from structlog.testing import capture_logs

from daemon.errors import StorageError, StoreExistsError
from daemon.run import Run
from tests.fixtures.s3 import REGION, SeaweedServer, download

from .support import check_balance, check_pixels, profile, run_to_end, simulated

pytestmark = pytest.mark.s3


def s3_storage(server: SeaweedServer) -> dict[str, object]:
    return {"endpoint": server.endpoint, "region": REGION, "part_size": 5 * 2**20, "max_attempts": 2}


@pytest.mark.slow
def test_frames_stream_into_s3_and_read_back(
    s3_server: SeaweedServer, s3_env: dict[str, str], data_root: Path, tmp_path: Path
) -> None:
    bucket = s3_server.make_bucket()
    store = f"s3://{bucket}/runs/sim.zarr"
    run = Run(profile(data_root, [simulated()], acquisition={"frames": 19}, store=store, s3=s3_storage(s3_server)))
    summary = run_to_end(run, timeout_s=60.0)
    assert summary["outcome"] == "finished", summary["errors"]
    assert (summary["store"], summary["stored"], summary["store_finalized"]) == (store, 19, True)
    check_balance(summary)
    copy = tmp_path / "copy.zarr"
    keys = download(s3_server, bucket, "runs/sim.zarr", copy)
    assert "frames/frame_id/zarr.json" in keys
    assert check_pixels(copy) == list(range(19))
    assert s3_server.uploads(bucket) == []


def test_a_failing_preflight_stops_the_run_before_any_camera(
    s3_server: SeaweedServer, s3_env: dict[str, str], data_root: Path
) -> None:
    store = "s3://no-such-bucket-acqd/runs/sim.zarr"
    run = Run(profile(data_root, [simulated()], acquisition={"frames": 5}, store=store, s3=s3_storage(s3_server)))
    with capture_logs() as logs, pytest.raises(StorageError, match="bucket 'no-such-bucket-acqd' does not exist"):
        run.start()
    events = [e["event"] for e in logs]
    assert "worker_spawned" not in events
    assert "frame_stream_bound" not in events  # nothing was bound, spawned or opened
    summary = run.summary
    assert summary is not None
    assert (summary["outcome"], summary["cause"], summary["delivered"]) == ("failed", "start_failed", 0)
    assert run.status().state.value == "failed"
    assert run.wait(0)


def test_an_existing_s3_store_is_refused_before_any_camera(
    s3_server: SeaweedServer, s3_env: dict[str, str], data_root: Path
) -> None:
    bucket = s3_server.make_bucket()
    s3_server.client().put_object(Bucket=bucket, Key="runs/old.zarr/zarr.json", Body=b"{}")
    store = f"s3://{bucket}/runs/old.zarr"
    settings = s3_storage(s3_server)
    run = Run(profile(data_root, [simulated()], acquisition={"frames": 5}, store=store, overwrite=False, s3=settings))
    with capture_logs() as logs, pytest.raises(StoreExistsError, match="overwrite is false"):
        run.start()
    assert "worker_spawned" not in [e["event"] for e in logs]
