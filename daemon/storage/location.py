"""Where a stream writes: :func:`open_store` turns ``store_path`` (and optional S3 settings) into a :class:`Store`.

A local path gives a :class:`~daemon.storage.file_store.FileStore` that refuses to write through a symlink on its
path (the profile layer resolved it inside the data root); ``s3://bucket/prefix/name.zarr`` gives an
:class:`~daemon.storage.s3_store.S3Store` (endpoint, region and limits from ``s3``, AWS defaults when it is None;
credentials from boto3's usual chain), or a :class:`~daemon.storage.staged_store.StagedS3Store` (local first,
uploaded in the background) when ``s3.staging_dir`` is set.
"""

from __future__ import annotations

from daemon.errors import ConfigError
from daemon.storage.file_store import FileStore
from daemon.storage.s3_names import is_s3_url
from daemon.storage.s3_settings import S3Settings
from daemon.storage.s3_store import S3Store
from daemon.storage.sink import Store
from daemon.storage.staged_store import StagedS3Store

S3_SCHEME = "s3://"


def open_store(store_path: str, s3: S3Settings | None = None) -> Store:
    """The store at ``store_path``: a local folder, or an S3 prefix when ``s3`` is given or the path is ``s3://``."""
    if is_s3_url(store_path):
        settings = s3 if s3 is not None else S3Settings()
        if settings.staging_dir is not None:
            return StagedS3Store.from_url(store_path, settings)
        return S3Store.from_url(store_path, settings)
    if s3 is not None:
        raise ConfigError(
            f"store_path must be an 's3://bucket/prefix' URL when s3 settings are given. Got {store_path!r} instead."
        )
    if "://" in store_path:
        raise ConfigError(f"store_path must be a local path or an 's3://' URL. Got {store_path!r} instead.")
    return FileStore(store_path, refuse_symlinks=True)
