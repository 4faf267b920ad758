"""S3 names: parsing ``s3://bucket/prefix/name.zarr`` into an :class:`S3Location`, and the bucket naming rules.

Design notes:
- Names are checked here, the same way whatever server is behind the endpoint: AWS's general purpose bucket rules
  (3-63 characters, lowercase letters, digits, '.' and '-', starting and ending with a letter or digit, no '..',
  not an IPv4 address, no reserved prefix or suffix), and each part of the prefix by :func:`~.sink.parse_key`.
- A store needs a prefix: a store at the root of a bucket would make ``clear`` (overwrite) empty the whole bucket.
- A URL carrying credentials (``s3://key:secret@bucket``) is refused without echoing it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from daemon.errors import ConfigError
from daemon.storage.sink import parse_key

SCHEME = "s3://"

_BUCKET_CHARS = re.compile(r"^[a-z0-9][a-z0-9.-]*[a-z0-9]$")
_IPV4 = re.compile(r"^\d{1,3}(\.\d{1,3}){3}$")
_RESERVED_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-")
_RESERVED_SUFFIXES = ("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3")


def parse_bucket(name: str) -> str:
    """Validate an S3 bucket name against AWS's general purpose bucket rules."""
    if not isinstance(name, str):
        raise ConfigError(f"S3 bucket name must be a string. Got {name!r} instead.")
    problem = _bucket_problem(name)
    if problem is not None:
        raise ConfigError(f"S3 bucket name {name!r} is invalid: {problem}.")
    return name


def _bucket_problem(name: str) -> str | None:
    if not 3 <= len(name) <= 63:
        return f"it must be 3 to 63 characters long, not {len(name)}"
    if not _BUCKET_CHARS.match(name):
        return "use only lowercase letters, digits, '.' and '-', and start and end with a letter or digit"
    if ".." in name:
        return "it must not contain two adjacent periods"
    if _IPV4.match(name):
        return "it must not be formatted as an IP address"
    for prefix in _RESERVED_PREFIXES:
        if name.startswith(prefix):
            return f"the prefix {prefix!r} is reserved"
    for suffix in _RESERVED_SUFFIXES:
        if name.endswith(suffix):
            return f"the suffix {suffix!r} is reserved"
    return None


@dataclass(frozen=True, slots=True)
class S3Location:
    """A store's place: a bucket and a non-empty ``/``-separated prefix (no leading or trailing ``/``)."""

    bucket: str
    prefix: str

    def __post_init__(self) -> None:
        parse_bucket(self.bucket)
        parse_key(self.prefix)

    @property
    def url(self) -> str:
        return f"{SCHEME}{self.bucket}/{self.prefix}"

    @property
    def folder(self) -> str:
        """The prefix with a trailing ``/``: lists what is inside the store and nothing beside it."""
        return self.prefix + "/"

    def object_key(self, key: str) -> str:
        """The S3 object key of a store key."""
        return f"{self.prefix}/{parse_key(key)}"


def is_s3_url(path: str) -> bool:
    return isinstance(path, str) and path.lower().startswith(SCHEME)


def parse_s3_url(url: str) -> S3Location:
    """``s3://bucket/prefix/name.zarr`` -> ``S3Location('bucket', 'prefix/name.zarr')``."""
    if not is_s3_url(url):
        raise ConfigError(f"S3 store path must start with {SCHEME!r}. Got {url!r} instead.")
    rest = url[len(SCHEME) :]
    bucket, _, prefix = rest.partition("/")
    if "@" in bucket:
        raise ConfigError(
            "S3 store path must not carry credentials ('user:secret@bucket'); "
            "give them through the environment, the shared credentials file or a profile."
        )
    if any(c in rest for c in "?#"):
        raise ConfigError(f"S3 store path must not have a query or fragment. Got {url!r} instead.")
    prefix = prefix.rstrip("/")
    if not prefix:
        raise ConfigError(
            f"S3 store path needs a prefix after the bucket, e.g. 's3://{bucket or 'bucket'}/name.zarr'. "
            f"Got {url!r} instead."
        )
    return S3Location(bucket=parse_bucket(bucket), prefix=parse_key(prefix))
