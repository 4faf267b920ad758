"""A profile turns staged uploads on with ``storage.s3.staging_dir`` (and tunes them): the profile layer reads the
new S3Settings fields from their type hints, and places their errors at the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from daemon.profile import load_profile, parse_profile
from daemon.storage.s3_settings import S3Settings
from daemon.strict_yaml import DocumentError

S3_EXAMPLE = Path(__file__).resolve().parents[2] / "config" / "profiles" / "s3.yaml"


def s3_profile(extra: str) -> str:
    """The shipped S3 example with ``extra`` lines added to its ``storage.s3`` section."""
    text = S3_EXAMPLE.read_text()
    anchor = "    region: us-east-1\n"
    assert anchor in text
    return text.replace(anchor, anchor + extra, 1)


def test_the_s3_example_writes_to_s3_directly(tmp_path: Path) -> None:
    s3 = load_profile(S3_EXAMPLE, tmp_path).stream.s3
    assert s3 is not None
    assert s3.staging_dir is None


def test_a_staging_dir_makes_the_store_staged(tmp_path: Path) -> None:
    staging = tmp_path / "staging"
    extra = f"    staging_dir: {staging}\n    keep_staged: true\n    upload_threads: 2\n    upload_wait_s: 600\n"
    s3 = parse_profile(s3_profile(extra), "s3.yaml", tmp_path).stream.s3
    assert s3 == S3Settings(
        endpoint="http://127.0.0.1:8333",
        region="us-east-1",
        part_size=16 * 2**20,
        max_attempts=5,
        connect_timeout_s=5.0,
        read_timeout_s=30.0,
        staging_dir=str(staging),
        keep_staged=True,
        upload_threads=2,
        upload_wait_s=600.0,
    )


@pytest.mark.parametrize(
    ("extra", "field", "words"),
    [
        ("    staging_dir: staging\n", "storage.s3.staging_dir", "absolute folder path"),
        ("    keep_staged: true\n", "storage.s3.keep_staged", "needs s3.staging_dir"),
        ("    upload_threads: 0\n", "storage.s3.upload_threads", "between 1 and 32"),
        ("    staging_dir: 5\n", "storage.s3.staging_dir", "must be a string"),
    ],
)
def test_a_bad_staging_setting_is_reported_at_its_field(tmp_path: Path, extra: str, field: str, words: str) -> None:
    with pytest.raises(DocumentError) as info:
        parse_profile(s3_profile(extra), "s3.yaml", tmp_path)
    issues = [issue for issue in info.value.issues if issue.path == field]
    assert issues, info.value.issues
    assert words in issues[0].message
