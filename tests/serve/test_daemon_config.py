"""The daemon configuration: defaults from the environment, strict reading with located errors, path resolution."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from daemon.config import (
    DaemonConfig,
    S3Defaults,
    default_runtime_dir,
    ensure_runtime_dir,
    load_config,
    resolve,
)
from daemon.errors import ConfigError
from daemon.storage.s3_settings import S3Settings
from daemon.strict_yaml import DocumentError

EXAMPLE = Path(__file__).resolve().parents[2] / "config" / "acqd.yaml"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "acqd.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({"RUNTIME_DIRECTORY": "/run/acqd:/run/other", "XDG_RUNTIME_DIR": "/run/user/1"}, "/run/acqd"),
        ({"XDG_RUNTIME_DIR": "/run/user/1"}, "/run/user/1/acqd"),
        ({}, f"/tmp/acqd-{os.getuid()}"),
    ],
)
def test_the_runtime_folder_follows_systemd_then_xdg_then_tmp(environ: dict[str, str], expected: str) -> None:
    assert default_runtime_dir(environ) == Path(expected)


def test_no_file_means_every_default(tmp_path: Path) -> None:
    settings = resolve(load_config(None), {"RUNTIME_DIRECTORY": str(tmp_path), "ACQD_DATA_ROOT": str(tmp_path)})
    assert settings.control_endpoint == f"ipc://{tmp_path}/control.sock"
    assert settings.events_endpoint == f"ipc://{tmp_path}/events.sock"
    assert settings.data_root == tmp_path.resolve()
    assert settings.curve is None
    assert settings.config == DaemonConfig()


def test_the_shipped_example_is_valid_and_says_the_defaults() -> None:
    config = load_config(EXAMPLE)
    assert config.control == DaemonConfig().control
    assert config.events == DaemonConfig().events
    assert config.runs == DaemonConfig().runs
    assert config.log == DaemonConfig().log


def test_relative_paths_are_relative_to_the_file(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "profiles_dir: profiles\ndata_root: ../data\ncurve: {keys_dir: keys, clients_dir: /etc/acqd/clients}\n",
    )
    settings = resolve(load_config(path), {})
    assert settings.profiles_dir == tmp_path / "profiles"
    assert settings.data_root == (tmp_path.parent / "data").resolve()
    assert settings.curve is not None
    assert settings.curve.keys_dir == tmp_path / "keys"
    assert settings.curve.clients_dir == Path("/etc/acqd/clients")


def test_sizes_take_units(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, "runs: {memory_bytes: 2 GiB, max_queue_bytes: 1048576}\n"))
    assert config.runs.memory_bytes == 2 * 1024**3
    assert config.runs.max_queue_bytes == 1024 * 1024


def test_every_issue_is_reported_with_line_and_field(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "control:\n  endpoint: /no/scheme\n  max_qeued: 3\nevents: {preview_max_hz: 0}\n"
        "runs:\n  memory_bytes: lots\nlog: {format: jsn}\ncurve: {keys_dir: keys}\nsecret_key: x\n",
    )
    with pytest.raises(DocumentError) as caught:
        load_config(path)
    found = {(issue.line, issue.path) for issue in caught.value.issues}
    assert found >= {
        (2, "control.endpoint"),
        (3, "control.max_qeued"),
        (4, "events.preview_max_hz"),
        (6, "runs.memory_bytes"),
        (7, "log.format"),
        (8, "curve.clients_dir"),
        (9, "secret_key"),
    }
    text = str(caught.value)
    assert "Did you mean 'max_queued'?" in text
    assert "Did you mean 'json'?" in text
    assert "credentials are never part" in text


@pytest.mark.parametrize("text", ["- a\n- b\n", "just text\n"])
def test_a_document_that_is_not_a_mapping_is_refused(tmp_path: Path, text: str) -> None:
    with pytest.raises(DocumentError, match="must be a mapping"):
        load_config(write(tmp_path, text))


def test_an_empty_file_means_every_default(tmp_path: Path) -> None:
    assert load_config(write(tmp_path, "# nothing\n")).runs == DaemonConfig().runs


def test_s3_defaults_fill_only_what_a_profile_leaves_out() -> None:
    defaults = S3Defaults(endpoint="http://127.0.0.1:8333", region="eu-west-1")
    filled = defaults.apply(S3Settings(region="us-east-1", part_size=8 * 1024 * 1024))
    assert filled == S3Settings(endpoint="http://127.0.0.1:8333", region="us-east-1", part_size=8 * 1024 * 1024)
    complete = S3Settings(endpoint="http://h:1", region="r")
    assert defaults.apply(complete) is complete


def test_s3_defaults_keep_every_other_field_of_the_profile() -> None:
    staged = S3Settings(staging_dir="/var/lib/acqd/staging", keep_staged=True, upload_threads=2, max_attempts=3)
    filled = S3Defaults(endpoint="http://127.0.0.1:8333", region="eu-west-1").apply(staged)
    assert (filled.staging_dir, filled.keep_staged, filled.upload_threads, filled.max_attempts) == (
        "/var/lib/acqd/staging",
        True,
        2,
        3,
    )


def test_s3_defaults_follow_the_profile_rules() -> None:
    with pytest.raises(ConfigError, match="credentials"):
        S3Defaults(endpoint="http://user:pw@host:1")


def test_the_runtime_folder_is_created_private(tmp_path: Path) -> None:
    runtime = tmp_path / "rt"
    settings = resolve(load_config(None), {"RUNTIME_DIRECTORY": str(runtime)})
    ensure_runtime_dir(settings)
    assert stat.S_IMODE(runtime.stat().st_mode) == 0o700
    runtime.chmod(0o755)
    with pytest.raises(ConfigError, match="0700"):
        ensure_runtime_dir(settings)
