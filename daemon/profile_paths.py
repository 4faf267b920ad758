"""Where a profile may write: the data root, and store paths resolved inside it.

A profile's ``storage.store`` is either an ``s3://bucket/prefix`` URL (checked by
:func:`daemon.storage.s3_names.parse_s3_url`) or a local path that must end up inside the data root:

- a relative path resolves under the data root;
- an absolute path is accepted only when it lies inside the data root;
- ``..`` parts are refused outright, and the path is resolved with symlinks followed, so a symlink inside the
  data root that points outside it is refused too;
- the data root itself is refused as a store (``overwrite`` would clear it).

Design notes: the data root comes from the CLI (``--data-root``, else ``ACQD_DATA_ROOT``, else ``./data``, see
:func:`default_data_root`); it need not exist yet. Resolution is done at load time; the run repeats the check
right before writing.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path, PurePosixPath

from daemon.errors import ConfigError
from daemon.storage.s3_names import is_s3_url, parse_s3_url

DATA_ROOT_ENV = "ACQD_DATA_ROOT"


def default_data_root(environ: Mapping[str, str] | None = None) -> Path:
    """``$ACQD_DATA_ROOT`` when set and non-empty, else ``./data``."""
    env = os.environ if environ is None else environ
    return Path(env.get(DATA_ROOT_ENV) or "data")


def resolve_store(store: str, data_root: Path) -> str:
    """The store as the engine takes it: the ``s3://`` URL unchanged, or an absolute local path inside
    ``data_root``. Raises ConfigError saying why the path is refused."""
    if is_s3_url(store):
        parse_s3_url(store)
        return store
    if not store.strip():
        raise ConfigError("store must be a path under the data root or an s3:// URL. Got '' instead.")
    if "://" in store:
        scheme = store.split("://", 1)[0]  # the rest is not echoed: a URL may carry credentials
        raise ConfigError(f"store must be a local path or an s3:// URL. Got a {scheme}:// URL instead.")
    if ".." in PurePosixPath(store).parts or ".." in Path(store).parts:
        raise ConfigError(f"store must not contain '..' parts. Got {store!r} instead.")
    root = data_root.resolve()
    target = (root / store).resolve()  # an absolute store replaces root in the join
    if target == root:
        raise ConfigError(f"store {store!r} is the data root {root} itself; give a folder inside it.")
    if not target.is_relative_to(root):
        raise ConfigError(
            f"store {store!r} resolves to {target}, outside the data root {root} (symlinks are followed); "
            "give a path inside it."
        )
    return str(target)
