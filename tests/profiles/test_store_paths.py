"""Store paths stay inside the data root: relative paths resolve under it; '..', outside paths and symlink escapes
are refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from daemon.errors import ConfigError
from daemon.profile_paths import DATA_ROOT_ENV, default_data_root, resolve_store


@pytest.fixture
def root(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    data.mkdir()
    return data


def test_a_relative_store_resolves_under_the_data_root(root: Path) -> None:
    assert resolve_store("demo.zarr", root) == str(root / "demo.zarr")
    assert resolve_store("runs/2024/demo.zarr", root) == str(root / "runs" / "2024" / "demo.zarr")


def test_the_data_root_need_not_exist_yet(tmp_path: Path) -> None:
    assert resolve_store("demo.zarr", tmp_path / "later") == str(tmp_path / "later" / "demo.zarr")


def test_an_absolute_store_inside_the_data_root_is_accepted(root: Path) -> None:
    assert resolve_store(str(root / "a.zarr"), root) == str(root / "a.zarr")


@pytest.mark.parametrize("store", ["../x.zarr", "a/../b.zarr", "a/../../x.zarr"])
def test_dot_dot_parts_are_refused_even_when_they_would_stay_inside(root: Path, store: str) -> None:
    with pytest.raises(ConfigError, match=r"must not contain '\.\.' parts"):
        resolve_store(store, root)


def test_an_absolute_store_outside_the_data_root_is_refused(root: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="outside the data root"):
        resolve_store(str(tmp_path / "elsewhere.zarr"), root)


@pytest.mark.parametrize("store", [".", "./", "{root}"])
def test_the_data_root_itself_is_refused(root: Path, store: str) -> None:
    with pytest.raises(ConfigError, match="is the data root"):
        resolve_store(store.format(root=root), root)


def test_a_symlink_pointing_outside_the_data_root_is_refused(root: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (root / "link").symlink_to(outside)
    with pytest.raises(ConfigError, match=f"resolves to {outside / 'x.zarr'}, outside the data root"):
        resolve_store("link/x.zarr", root)


def test_a_symlinked_store_itself_pointing_outside_is_refused(root: Path, tmp_path: Path) -> None:
    (root / "demo.zarr").symlink_to(tmp_path)
    with pytest.raises(ConfigError, match="outside the data root"):
        resolve_store("demo.zarr", root)


def test_a_symlink_staying_inside_the_data_root_is_followed(root: Path) -> None:
    (root / "real").mkdir()
    (root / "alias").symlink_to(root / "real")
    assert resolve_store("alias/x.zarr", root) == str(root / "real" / "x.zarr")


def test_a_data_root_that_is_a_symlink_is_resolved_first(root: Path, tmp_path: Path) -> None:
    (tmp_path / "root-link").symlink_to(root)
    assert resolve_store("x.zarr", tmp_path / "root-link") == str(root / "x.zarr")


def test_s3_urls_are_checked_and_kept(root: Path) -> None:
    assert resolve_store("s3://acqd-data/runs/x.zarr", root) == "s3://acqd-data/runs/x.zarr"
    with pytest.raises(ConfigError, match="needs a prefix"):
        resolve_store("s3://acqd-data", root)


@pytest.mark.parametrize("store", ["", "  ", "https://user:hunter2@example.org/x.zarr", "file:///tmp/x.zarr"])
def test_empty_paths_and_other_urls_are_refused_without_echoing_urls(root: Path, store: str) -> None:
    with pytest.raises(ConfigError, match="store must be") as caught:
        resolve_store(store, root)
    assert "hunter2" not in str(caught.value)


def test_the_default_data_root_comes_from_the_environment_else_data() -> None:
    assert default_data_root({DATA_ROOT_ENV: "/srv/acqd"}) == Path("/srv/acqd")
    assert default_data_root({DATA_ROOT_ENV: ""}) == Path("data")
    assert default_data_root({}) == Path("data")
