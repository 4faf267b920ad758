"""Where a profile may write: the data root, and store paths resolved inside it.

A profile's ``storage.store`` is either an ``s3://bucket/prefix`` URL (checked by
:func:`daemon.storage.s3_names.parse_s3_url`) or a local path that must end up inside the data root:

- a relative path resolves under the data root;
- an absolute path is accepted only when it lies inside the data root;
- ``..`` parts are refused outright, and the path is resolved with symlinks followed, so a symlink inside the
  data root that points outside it is refused too;
- the data root itself is refused as a store (``overwrite`` would clear it);
- text that hides or fakes a path is refused: control, format and invisible characters, text not in Unicode NFC
  form (:func:`daemon.strict_yaml.text_problem`), and look-alikes of ``.``, ``/`` and ``\\`` (U+FF0E, U+FF0F,
  U+2215, U+2044, ...: :data:`daemon.strict_yaml.LOOK_ALIKES`), so what a path looks like is where it goes;
- an existing store that is not a folder (a FIFO, a device, a socket, a file) is refused: opening or clearing it
  could block on or destroy something that is not a store.

Design notes: the data root comes from the CLI (``--data-root``, else ``ACQD_DATA_ROOT``, else ``./data``, see
:func:`default_data_root`); it need not exist yet. Resolution is done at load time; the run repeats the check
right before writing.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from pathlib import Path, PurePosixPath

from daemon.errors import ConfigError
from daemon.storage.s3_names import is_s3_url, parse_s3_url
from daemon.strict_yaml import LOOK_ALIKES, describe_char, escaped, hiding_problem, text_problem

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
    if (problem := hiding_problem(store) or text_problem(store)) is not None:
        raise ConfigError(f"store {problem}")
    if ".." in PurePosixPath(store).parts or ".." in Path(store).parts:
        raise ConfigError(f"store must not contain '..' parts. Got {store!r} instead.")
    fake = next((i for i, char in enumerate(store) if char in LOOK_ALIKES), None)
    if fake is not None:
        raise ConfigError(
            f"store must not contain look-alikes of '.', '/' or '\\': {describe_char(store[fake])} at index {fake}. "
            f"Got {escaped(store)} instead; accepted: folder names separated by '/'."
        )
    root = data_root.resolve()
    target = (root / store).resolve()  # an absolute store replaces root in the join
    if target == root:
        raise ConfigError(f"store {store!r} is the data root {root} itself; give a folder inside it.")
    if not target.is_relative_to(root):
        raise ConfigError(
            f"store {store!r} resolves to {target}, outside the data root {root} (symlinks are followed); "
            "give a path inside it."
        )
    _refuse_special_file(target)
    return str(target)


def _refuse_special_file(target: Path) -> None:
    """Raise ConfigError when ``target`` exists and is not a folder."""
    try:
        mode = target.lstat().st_mode
    except FileNotFoundError:
        return
    except OSError as exc:
        raise ConfigError(f"store {target} cannot be checked: {exc.strerror or exc}") from exc
    if stat.S_ISDIR(mode):
        return
    kind = {stat.S_IFIFO: "a FIFO", stat.S_IFCHR: "a character device", stat.S_IFBLK: "a block device"}.get(
        stat.S_IFMT(mode), "a socket" if stat.S_ISSOCK(mode) else "a file"
    )
    raise ConfigError(f"store {target} exists and is {kind}, not a folder: give a new path or a store folder.")
