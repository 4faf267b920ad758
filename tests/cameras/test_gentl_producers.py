"""Finding .cti files from the settings or GENICAM_GENTL64_PATH."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from daemon.cameras.gentl_producers import ENV_VAR, find_producers
from daemon.errors import ConfigError


@pytest.fixture
def folders(tmp_path: Path) -> tuple[Path, Path]:
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    (a / "one.cti").write_bytes(b"")
    (a / "notes.txt").write_text("x")
    (b / "two.cti").write_bytes(b"")
    (b / "three.CTI").write_bytes(b"")
    return a, b


def test_settings_paths_may_name_files_or_folders(folders: tuple[Path, Path]) -> None:
    a, b = folders
    found = find_producers([str(a / "one.cti"), str(b)], environ={})
    assert [p.name for p in found] == ["one.cti", "three.CTI", "two.cti"]


def test_environment_folders_are_used_when_settings_are_empty(folders: tuple[Path, Path], tmp_path: Path) -> None:
    a, b = folders
    env = {ENV_VAR: os.pathsep.join([str(a), str(tmp_path / "gone"), str(b), str(a)])}
    assert [p.name for p in find_producers([], environ=env)] == ["one.cti", "three.CTI", "two.cti"]


def test_a_bad_settings_path_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"producers entry '.*missing.cti' is neither a .cti file nor a folder"):
        find_producers([str(tmp_path / "missing.cti")], environ={})


def test_nothing_found_says_where_it_looked(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=rf"no GenTL producer \(.cti\) found in {ENV_VAR}="):
        find_producers([], environ={ENV_VAR: str(tmp_path)})
