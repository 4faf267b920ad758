"""The daemon's profile folder: names, descriptions, invalid files kept with their errors, a snapshot until reload,
and the daemon's S3 defaults filled into profiles that leave them out."""

from __future__ import annotations

from pathlib import Path

import pytest

from daemon.config import RunsConfig, S3Defaults
from daemon.errors import ConfigError, NotFoundError
from daemon.profile_catalog import ProfileCatalog
from daemon.run_manager import ProfileSource
from tests.serve.daemon_process import sim_profile

DEFAULTS = S3Defaults(endpoint="http://127.0.0.1:8333", region="eu-west-1")


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    profiles = tmp_path / "profiles"
    profiles.mkdir()
    (profiles / "good.yaml").write_text(sim_profile("good"))
    (profiles / "other.yml").write_text(sim_profile("other", store="other.zarr"))
    (profiles / "bad.yaml").write_text("cameras: []\n")
    (profiles / "-hidden.yaml").write_text(sim_profile("x"))
    (profiles / "notes.txt").write_text("not a profile")
    return profiles


def catalog_of(folder: Path, runs: RunsConfig | None = None) -> ProfileCatalog:
    catalog = ProfileCatalog(folder, folder.parent / "data", DEFAULTS, runs or RunsConfig())
    catalog.reload()
    return catalog


def test_profiles_are_named_by_file_and_described_by_their_first_comment(folder: Path) -> None:
    infos = catalog_of(folder).infos()
    assert [info.name for info in infos] == ["bad", "good", "other"]
    good = infos[1]
    assert good.description == "good: a small simulated camera for the serve tests"
    assert good.path == str(folder / "good.yaml")


def test_an_invalid_profile_stays_listed_and_says_why(folder: Path) -> None:
    catalog = ProfileCatalog(folder, folder.parent / "data", DEFAULTS, RunsConfig())
    result = catalog.reload()
    assert result["profiles"] == ["bad", "good", "other"]
    assert list(result["invalid"]) == ["bad"]
    with pytest.raises(ConfigError, match=r"bad\.yaml:1: cameras: must list at least one camera"):
        catalog.load(ProfileSource(name="bad"), {})


def test_named_profiles_are_the_files_as_of_the_last_reload(folder: Path) -> None:
    catalog = catalog_of(folder)
    (folder / "good.yaml").write_text(sim_profile("good", frames=3))
    (folder / "new.yaml").write_text(sim_profile("new"))
    assert catalog.load(ProfileSource(name="good"), {}).acquisition.frames == 30
    with pytest.raises(NotFoundError, match="no profile named 'new'"):
        catalog.load(ProfileSource(name="new"), {})
    catalog.reload()
    assert catalog.load(ProfileSource(name="good"), {}).acquisition.frames == 3
    assert catalog.load(ProfileSource(name="new"), {}).cameras[0].name == "new"


def test_s3_defaults_fill_what_the_profile_leaves_out(folder: Path) -> None:
    catalog = catalog_of(folder)
    profile = catalog.load(ProfileSource(name="good"), {"storage.store": "s3://bucket/run.zarr"})
    assert profile.stream.s3 is not None
    assert (profile.stream.s3.endpoint, profile.stream.s3.region) == ("http://127.0.0.1:8333", "eu-west-1")
    named = catalog.load(
        ProfileSource(name="good"), {"storage.store": "s3://bucket/run.zarr", "storage.s3": {"region": "us-east-1"}}
    )
    assert named.stream.s3 is not None
    assert (named.stream.s3.endpoint, named.stream.s3.region) == ("http://127.0.0.1:8333", "us-east-1")
    local = catalog.load(ProfileSource(name="good"), {})
    assert local.stream.s3 is None


def test_a_queue_above_the_daemon_limit_is_invalid(folder: Path) -> None:
    catalog = catalog_of(folder, RunsConfig(max_queue_bytes="4 MiB"))
    with pytest.raises(ConfigError, match=r"queue_bytes is 8388608 bytes; this daemon allows at most 4194304"):
        catalog.load(ProfileSource(text=sim_profile("inline")), {})
    assert catalog.load(ProfileSource(text=sim_profile("inline")), {"acquisition.queue_bytes": "2 MiB"})
