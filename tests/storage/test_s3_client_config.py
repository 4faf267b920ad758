"""The S3 client is configured from S3Settings alone: standard retries, attempts, timeouts, addressing."""

from __future__ import annotations

from pathlib import Path

import pytest

from daemon.errors import ConfigError
from daemon.storage.s3_client import make_client
from daemon.storage.s3_settings import S3Settings


@pytest.fixture(autouse=True)
def isolated_aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A user's ~/.aws/config (retry_mode, max_attempts, region) must not change what acqd does."""
    config = tmp_path / "config"
    config.write_text("[default]\nretry_mode = legacy\nmax_attempts = 9\nregion = eu-west-3\n")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    for name in ("AWS_RETRY_MODE", "AWS_MAX_ATTEMPTS", "AWS_PROFILE", "AWS_DEFAULT_PROFILE"):
        monkeypatch.delenv(name, raising=False)


def test_retries_and_timeouts_come_from_the_settings() -> None:
    settings = S3Settings(
        endpoint="http://127.0.0.1:9", region="us-west-2", max_attempts=4, connect_timeout_s=1.5, read_timeout_s=7
    )
    client = make_client(settings)
    config = client.meta.config
    assert config.retries == {"mode": "standard", "total_max_attempts": 4}
    assert (config.connect_timeout, config.read_timeout) == (1.5, 7)
    assert config.s3 == {"addressing_style": "path"}
    assert client.meta.endpoint_url == "http://127.0.0.1:9"
    assert client.meta.region_name == "us-west-2"
    client.close()


def test_aws_keeps_its_default_addressing_and_the_region_chain() -> None:
    client = make_client(S3Settings(max_attempts=2))
    assert client.meta.config.retries == {"mode": "standard", "total_max_attempts": 2}
    assert client.meta.config.s3 == {"addressing_style": "auto"}
    assert client.meta.region_name == "eu-west-3"  # no region in the settings: boto3's usual sources
    client.close()


def test_preflight_may_lower_the_attempts() -> None:
    client = make_client(S3Settings(max_attempts=5), max_attempts=2)
    assert client.meta.config.retries == {"mode": "standard", "total_max_attempts": 2}
    client.close()


def test_an_unknown_profile_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"s3\.profile 'nope' was not found"):
        make_client(S3Settings(profile="nope"))
