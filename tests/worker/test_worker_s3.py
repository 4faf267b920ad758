"""The worker writes to S3 (SeaweedFS): images and frame tables on one store (plain, or staged locally first)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import pytest

from daemon.ipc.frame_sender import FrameSender
from daemon.ipc.stream_status import SenderState
from tests.fixtures.s3 import SeaweedServer, download

from .support import (
    Offered,
    WorkerProcess,
    check_frames,
    make_frame,
    read_table,
    stream_settings,
    table_row,
    table_rows,
)

pytestmark = pytest.mark.s3

FRAMES = 19


@pytest.mark.parametrize("staged", [False, True], ids=["direct", "staged"])
def test_frames_and_tables_reach_s3(
    tmp_path: Path,
    staged: bool,
    s3_server: SeaweedServer,
    make_sender: Callable[..., FrameSender],
    start_worker: Callable[..., WorkerProcess],
) -> None:
    bucket = s3_server.make_bucket()
    s3 = s3_server.settings()
    if staged:
        s3 = dataclasses.replace(s3, staging_dir=str(tmp_path / "staging"))
    settings = dataclasses.replace(
        stream_settings(tmp_path / "unused", 3), store_path=f"s3://{bucket}/runs/a.zarr", s3=s3
    )
    sender = make_sender(settings)
    worker = start_worker(sender.endpoint, env=s3_server.env)
    assert sender.wait_for_worker(timeout_s=30) is not None, worker.log_text()
    offered = Offered()
    for index in range(FRAMES):
        offered.offer(sender, make_frame(100 + index, index), "cam0")
    result = sender.finish(timeout_s=60)
    assert worker.wait() == 0, worker.log_text()
    assert result.state is SenderState.FINISHED
    assert result.summary is not None
    assert result.summary["frame_table"] == {"cam0": FRAMES}
    assert result.stats.balance.stored == FRAMES

    local = tmp_path / "copy.zarr"
    keys = download(s3_server, bucket, "runs/a.zarr", local)
    assert "cam0/frames/frame_id/zarr.json" in keys
    accepted = offered.accepted["cam0"]
    check_frames(local, "cam0", accepted, claimed=FRAMES)
    assert table_rows(read_table(local, "cam0")) == [table_row(f) for f in accepted]
