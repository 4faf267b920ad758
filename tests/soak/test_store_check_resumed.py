"""The soak's store checker understands a resumed store: the gap's padding rows are no frames, the rows the crash
lost are frames without an id, each run's ids are unique on their own; a padding row with a frame id, or a flag
where no resume record puts one, is reported. The table's rows are ``frame_id``'s length: other columns may be
longer after a crash in the middle of a sync, a shorter one is reported."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import zarr

from daemon.storage.frame_table import PADDING
from tests.pipeline.test_run_cli import acqd_run, finished_events, write_profile
from tests.serve.daemon_process import wait_for_state
from tests.soak.store_check import check_store
from tests.soak.test_resume import restart_after_crash, wait_recovered

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def resumed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any], int]:
    """A store written by a run, SIGKILLed with its daemon, then resumed for half a second: (store, the resume
    figures of the run summary, frames the resumed run stored)."""
    tmp_path = tmp_path_factory.mktemp("resumed")
    first, second, run_id = restart_after_crash(tmp_path)
    try:
        with second.client(timeout_s=10.0) as client:
            wait_recovered(client, run_id)
            new_id = client.resume(run_id)
            wait_for_state(client, new_id, ("running",))
            time.sleep(0.5)
            client.stop(new_id)
            assert wait_for_state(client, new_id)["state"] == "finished"
        summary = next(e for e in second.logs() if e.get("event") == "run_summary" and e.get("run_id") == new_id)
    finally:
        second.close()
        first.close()
    return second.data_root / "live.zarr", summary["resume"][""], summary["stored"]


@pytest.mark.timeout(60)
def test_a_resumed_store_passes_with_its_gap_counted(resumed: tuple[Path, dict[str, Any], int]) -> None:
    store, resume, stored = resumed
    report = check_store(store)
    assert report.problems == []
    assert report.resumes == 1
    assert report.padding == resume["padding_frames"]
    assert report.row_lost == resume["claimed_before"] - resume["table_rows_before"]
    assert report.frames == resume["claimed_before"] + stored


@pytest.fixture(scope="module")
def gapped(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """A store with a gap for certain (a crash leaves none when its claim ends on an object row): ``acqd run`` of
    13 frames, then ``--resume`` of 5 more, which start at frame 16, the next row of 8 (4-frame chunks, 2 per
    shard): (store, the resume figures of the second run's summary)."""
    tmp_path = tmp_path_factory.mktemp("gapped")
    data = tmp_path / "data"
    first = acqd_run(
        str(write_profile(tmp_path, {"frames": 13}, "gapped.zarr")), "--data-root", str(data), cwd=tmp_path
    )
    run_id = next(e["run_id"] for e in finished_events(first) if e["event"] == "run_started")
    again = tmp_path / "again"
    again.mkdir()
    profile = write_profile(again, {"frames": 5}, "gapped.zarr")
    second = acqd_run(str(profile), "--data-root", str(data), "--resume", run_id, cwd=tmp_path)
    resume: dict[str, Any] = next(e for e in finished_events(second) if e["event"] == "run_summary")["resume"][""]
    assert (resume["claimed_before"], resume["padding_frames"]) == (13, 3)
    return data / "gapped.zarr", resume


@pytest.mark.timeout(60)
def test_a_gapped_store_passes(gapped: tuple[Path, dict[str, Any]]) -> None:
    store, _ = gapped
    report = check_store(store)
    assert report.problems == []
    assert (report.resumes, report.padding, report.frames) == (1, 3, 13 + 5)


@pytest.mark.timeout(60)
def test_a_padding_row_with_a_frame_id_is_reported(gapped: tuple[Path, dict[str, Any]], tmp_path: Path) -> None:
    store, resume = gapped
    copy = _copy(store, tmp_path)
    ids = zarr.open_array(str(copy / "frames" / "frame_id"), mode="r+")
    ids[resume["claimed_before"]] = 7
    assert "/: a padding or lost row has a frame id" in check_store(copy).problems


@pytest.mark.timeout(60)
def test_a_padding_flag_outside_the_recorded_gap_is_reported(
    resumed: tuple[Path, dict[str, Any], int], tmp_path: Path
) -> None:
    store, resume, _ = resumed
    copy = _copy(store, tmp_path)
    flags = zarr.open_array(str(copy / "frames" / "flags"), mode="r+")
    row = resume["at_index"] + 1
    flags[row] = np.uint8(PADDING)
    problems = check_store(copy).problems
    assert any(f"row {row} flags {PADDING}, the resume records expect 0" in p for p in problems), problems


@pytest.mark.timeout(60)
def test_columns_longer_than_frame_id_are_read_to_its_length(
    resumed: tuple[Path, dict[str, Any], int], tmp_path: Path
) -> None:
    # frame_id's metadata is written last: a crash in the middle of a sync leaves the other columns longer.
    store, _, _ = resumed
    before = check_store(store)
    copy = _copy(store, tmp_path)
    ids = zarr.open_array(str(copy / "frames" / "frame_id"), mode="r+")
    ids.resize((ids.shape[0] - 1,))
    report = check_store(copy)
    assert report.problems == []
    assert report.untabled == before.untabled + 1


@pytest.mark.timeout(60)
def test_a_column_shorter_than_frame_id_is_reported(resumed: tuple[Path, dict[str, Any], int], tmp_path: Path) -> None:
    store, _, _ = resumed
    copy = _copy(store, tmp_path)
    flags = zarr.open_array(str(copy / "frames" / "flags"), mode="r+")
    flags.resize((flags.shape[0] - 1,))
    problems = check_store(copy).problems
    assert any("frame-table columns ['flags'] are shorter than frame_id" in p for p in problems), problems


def _copy(store: Path, tmp_path: Path) -> Path:
    import shutil

    copy = tmp_path / store.name
    shutil.copytree(store, copy)
    return copy
