"""S3Settings refuse what cannot work, and never echo an endpoint that carries a secret."""

from __future__ import annotations

import pytest

from daemon.errors import ConfigError
from daemon.storage.s3_settings import MIN_PART_SIZE, S3Settings


def test_defaults_are_valid() -> None:
    settings = S3Settings()
    assert settings.endpoint is None
    assert settings.part_size >= MIN_PART_SIZE


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({"endpoint": "127.0.0.1:9000"}, ["s3.endpoint", "'http://' or 'https://'", "'127.0.0.1:9000'"]),
        ({"part_size": MIN_PART_SIZE - 1}, ["s3.part_size", str(MIN_PART_SIZE), str(MIN_PART_SIZE - 1)]),
        ({"max_attempts": 0}, ["s3.max_attempts", "between 1 and 20", "Got 0"]),
        ({"max_attempts": 21}, ["s3.max_attempts", "Got 21"]),
        ({"connect_timeout_s": 0}, ["s3.connect_timeout_s", "(0, 600]"]),
        ({"read_timeout_s": 601}, ["s3.read_timeout_s", "Got 601"]),
    ],
)
def test_invalid_settings_name_the_field_and_what_is_accepted(fields: dict[str, object], words: list[str]) -> None:
    with pytest.raises(ConfigError) as info:
        S3Settings(**fields)  # type: ignore[arg-type]
    for word in words:
        assert word in str(info.value)


@pytest.mark.parametrize("endpoint", ["http://AKID:hunter2@host:9000", "AKID:hunter2@host:9000"])
def test_an_endpoint_with_credentials_is_refused_without_echoing_it(endpoint: str) -> None:
    with pytest.raises(ConfigError, match="must not carry credentials") as info:
        S3Settings(endpoint=endpoint)
    assert "hunter2" not in str(info.value)
    assert "AKID" not in str(info.value)


def test_an_at_sign_in_the_path_is_not_credentials() -> None:
    assert S3Settings(endpoint="http://host:9000/a@b").endpoint == "http://host:9000/a@b"
