"""Settings of an S3 target: endpoint, region, transfer limits and local staging (never credentials).

Credentials come from boto3's usual sources (environment, shared credentials file, profile, instance role);
they are never part of a profile, never logged and never echoed.

With ``staging_dir`` set the store is *staged* (:mod:`daemon.storage.staged_store`): objects are written to that
local folder first and uploaded in the background, so an S3 outage never costs frames.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from daemon.errors import ConfigError

MIN_PART_SIZE = 5 * 1024 * 1024
MAX_UPLOAD_THREADS = 32  # the client's connection pool (s3_client.MAX_POOL_CONNECTIONS)
MAX_UPLOAD_WAIT_S = 7 * 24 * 3600.0


@dataclass(frozen=True, slots=True)
class S3Settings:
    """Where and how to reach an S3 server. ``endpoint=None`` means AWS's default for the region."""

    endpoint: str | None = None
    region: str | None = None
    profile: str | None = None  # a named profile of the shared credentials file
    part_size: int = 16 * 1024 * 1024
    max_attempts: int = 5
    connect_timeout_s: float = 5.0
    read_timeout_s: float = 30.0
    staging_dir: str | None = None  # an absolute local folder: write there first, upload in the background
    keep_staged: bool = False  # keep a local copy of every uploaded object (staging_dir/<store>/kept/)
    upload_threads: int = 4  # background uploads at once (staged stores)
    upload_wait_s: float = 60.0  # how long closing a staged store waits for its uploads; the rest stay journaled

    def __post_init__(self) -> None:
        if self.endpoint is not None and "@" in self.endpoint.split("://", 1)[-1].split("/", 1)[0]:
            raise ConfigError(  # the value is not echoed: it holds a secret
                "s3.endpoint must not carry credentials ('user:secret@host'); give them through the environment, "
                "the shared credentials file or s3.profile."
            )
        if self.endpoint is not None and not self.endpoint.startswith(("http://", "https://")):
            raise ConfigError(f"s3.endpoint must start with 'http://' or 'https://'. Got {self.endpoint!r} instead.")
        if self.part_size < MIN_PART_SIZE:
            raise ConfigError(
                f"s3.part_size must be at least {MIN_PART_SIZE} bytes (S3's minimum part). "
                f"Got {self.part_size} instead."
            )
        if not 1 <= self.max_attempts <= 20:
            raise ConfigError(f"s3.max_attempts must be between 1 and 20. Got {self.max_attempts} instead.")
        for name in ("connect_timeout_s", "read_timeout_s"):
            value = getattr(self, name)
            if not 0 < value <= 600:
                raise ConfigError(f"s3.{name} must be in (0, 600] seconds. Got {value} instead.")
        self._check_staging()

    def _check_staging(self) -> None:
        if self.staging_dir is not None and not (self.staging_dir.strip() and os.path.isabs(self.staging_dir)):
            raise ConfigError(f"s3.staging_dir must be an absolute folder path. Got {self.staging_dir!r} instead.")
        if self.keep_staged and self.staging_dir is None:
            raise ConfigError("s3.keep_staged needs s3.staging_dir (the folder the copies are kept in). Got None.")
        if not 1 <= self.upload_threads <= MAX_UPLOAD_THREADS:
            raise ConfigError(
                f"s3.upload_threads must be between 1 and {MAX_UPLOAD_THREADS}. Got {self.upload_threads} instead."
            )
        if not 0 <= self.upload_wait_s <= MAX_UPLOAD_WAIT_S:
            raise ConfigError(
                f"s3.upload_wait_s must be in [0, {MAX_UPLOAD_WAIT_S:.0f}] seconds. Got {self.upload_wait_s} instead."
            )
