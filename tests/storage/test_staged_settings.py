"""The staging settings of S3Settings refuse what cannot work, and ``open_store`` gives a staged store exactly
when ``s3.staging_dir`` is set."""

from __future__ import annotations

from pathlib import Path

import pytest

from daemon.errors import ConfigError
from daemon.storage.location import open_store
from daemon.storage.s3_settings import S3Settings
from daemon.storage.s3_store import S3Store
from daemon.storage.staged_store import StagedS3Store
from daemon.storage.upload_queue import UploadState
from tests.fixtures.s3 import SeaweedServer


def test_staging_is_off_by_default() -> None:
    settings = S3Settings()
    assert (settings.staging_dir, settings.keep_staged) == (None, False)
    assert settings.upload_threads >= 1
    assert settings.upload_wait_s > 0


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({"staging_dir": "staging"}, ["s3.staging_dir", "absolute", "'staging'"]),
        ({"staging_dir": " "}, ["s3.staging_dir", "absolute"]),
        ({"keep_staged": True}, ["s3.keep_staged", "s3.staging_dir"]),
        ({"upload_threads": 0}, ["s3.upload_threads", "between 1 and 32", "Got 0"]),
        ({"upload_threads": 33}, ["s3.upload_threads", "Got 33"]),
        ({"upload_wait_s": -1.0}, ["s3.upload_wait_s", "Got -1.0"]),
    ],
)
def test_invalid_staging_settings_name_the_field_and_what_is_accepted(
    fields: dict[str, object], words: list[str]
) -> None:
    with pytest.raises(ConfigError) as info:
        S3Settings(**fields)  # type: ignore[arg-type]
    for word in words:
        assert word in str(info.value)


def test_a_staged_store_needs_a_staging_dir() -> None:
    with pytest.raises(ConfigError, match="staging_dir"):
        StagedS3Store.from_url("s3://bucket/a.zarr", S3Settings())


@pytest.mark.s3
def test_open_store_stages_only_when_a_staging_dir_is_set(
    s3_server: SeaweedServer, s3_settings: S3Settings, tmp_path: Path
) -> None:
    url = f"s3://{s3_server.make_bucket()}/runs/a.zarr"
    direct = open_store(url, s3_settings)
    assert type(direct) is S3Store
    direct.close()
    staged = open_store(url, s3_server.settings(staging_dir=str(tmp_path / "staging")))
    assert isinstance(staged, StagedS3Store)
    assert staged.url == url
    assert staged.staging_folder.parent == tmp_path / "staging"
    staged.close()
    assert staged.upload_stats().state is UploadState.COMPLETE
