"""Settings of an S3 target: endpoint, region and transfer limits (never credentials).

Credentials come from boto3's usual sources (environment, shared credentials file, profile, instance role);
they are never part of a profile, never logged and never echoed.
"""

from __future__ import annotations

from dataclasses import dataclass

from daemon.errors import ConfigError

MIN_PART_SIZE = 5 * 1024 * 1024


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
