"""Fixtures of the pipeline tests: a data root, a GenTL path holding only the fake producer, run cleanup."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from daemon.cameras.gentl_producers import ENV_VAR
from daemon.run import Run


@pytest.fixture
def data_root(tmp_path: Path) -> Path:
    root = tmp_path / "data"
    root.mkdir()
    return root


@pytest.fixture
def gentl_path(fake_cti: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``GENICAM_GENTL64_PATH`` naming a folder that holds only the (non-ASan) fake producer."""
    folder = tmp_path / "gentl"
    folder.mkdir()
    (folder / fake_cti.name).symlink_to(fake_cti)
    monkeypatch.setenv(ENV_VAR, str(folder))
    return folder


@pytest.fixture
def runs() -> Iterator[list[Run]]:
    """Runs a test made: any still going at teardown are aborted and waited for (so no worker outlives a test)."""
    made: list[Run] = []
    yield made
    for run in made:
        if run.status().state.value in ("running", "stopping"):
            run.request_abort()
            run.wait(30.0)
