"""S3 names are validated by acqd the same way whatever the server would accept."""

from __future__ import annotations

import pytest

from daemon.errors import ConfigError
from daemon.storage.s3_names import S3Location, is_s3_url, parse_bucket, parse_s3_url


@pytest.mark.parametrize(
    "name",
    ["abc", "my-bucket", "my.bucket.2", "0bucket9", "a" * 63, "xn-bucket", "bucket-s3", "192.168.5.4a"],
)
def test_valid_bucket_names(name: str) -> None:
    assert parse_bucket(name) == name


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("ab", "3 to 63 characters"),
        ("a" * 64, "3 to 63 characters"),
        ("My-Bucket", "lowercase"),
        ("my_bucket", "lowercase"),
        ("-bucket", "start and end"),
        ("bucket-", "start and end"),
        (".bucket", "start and end"),
        ("my..bucket", "two adjacent periods"),
        ("192.168.5.4", "IP address"),
        ("xn--bucket", "'xn--' is reserved"),
        ("sthree-bucket", "'sthree-' is reserved"),
        ("amzn-s3-demo-bucket", "'amzn-s3-demo-' is reserved"),
        ("bucket-s3alias", "'-s3alias' is reserved"),
        ("bucket--ol-s3", "'--ol-s3' is reserved"),
        ("bucket.mrap", "'.mrap' is reserved"),
        ("bucket--x-s3", "'--x-s3' is reserved"),
        ("my bucket", "lowercase"),
    ],
)
def test_invalid_bucket_names_say_why(name: str, reason: str) -> None:
    with pytest.raises(ConfigError, match="bucket name") as info:
        parse_bucket(name)
    assert reason in str(info.value)
    assert repr(name) in str(info.value)


def test_an_s3_url_splits_into_bucket_and_prefix() -> None:
    assert parse_s3_url("s3://my-bucket/runs/2024/a.zarr") == S3Location("my-bucket", "runs/2024/a.zarr")
    assert parse_s3_url("s3://my-bucket/a.zarr/") == S3Location("my-bucket", "a.zarr")
    location = parse_s3_url("s3://my-bucket/runs/a.zarr")
    assert location.url == "s3://my-bucket/runs/a.zarr"
    assert location.object_key("0/c/1/2") == "runs/a.zarr/0/c/1/2"
    assert location.folder == "runs/a.zarr/"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("/data/a.zarr", "must start with 's3://'"),
        ("s3://my-bucket", "needs a prefix"),
        ("s3://my-bucket/", "needs a prefix"),
        ("s3://My_Bucket/a.zarr", "bucket name"),
        ("s3://my-bucket//a.zarr", "invalid part ''"),
        ("s3://my-bucket/runs/../a.zarr", "invalid part '..'"),
        ("s3://my-bucket/runs/./a.zarr", "invalid part '.'"),
        ("s3://my-bucket/a b.zarr", "invalid part 'a b.zarr'"),
        ("s3://my-bucket/a.zarr?versionId=3", "query or fragment"),
        ("s3://my-bucket/a.zarr#x", "query or fragment"),
    ],
)
def test_invalid_s3_urls_are_refused(url: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_s3_url(url)
    assert message in str(info.value)


def test_a_url_with_credentials_is_refused_without_echoing_them() -> None:
    with pytest.raises(ConfigError) as info:
        parse_s3_url("s3://AKIDEXAMPLE:hunter2secret@my-bucket/a.zarr")
    assert "credentials" in str(info.value)
    assert "hunter2secret" not in str(info.value)
    assert "AKIDEXAMPLE" not in str(info.value)


def test_store_keys_map_under_the_prefix_and_are_validated() -> None:
    location = S3Location("my-bucket", "a.zarr")
    with pytest.raises(ConfigError, match="invalid part"):
        location.object_key("../escape")
    with pytest.raises(ConfigError, match="bucket name"):
        S3Location("BAD", "a.zarr")


def test_is_s3_url() -> None:
    assert is_s3_url("s3://b/x")
    assert not is_s3_url("/tmp/x.zarr")
    assert not is_s3_url("s3:/b/x")
