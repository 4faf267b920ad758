"""The profile keys a run reads: ``acquisition.incomplete``, ``acquisition.metrics_interval_s``,
``storage.worker_endpoint`` (loopback unless ``storage.allow_remote_worker``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from daemon.profile import AcquisitionSettings, parse_profile
from daemon.profile_worker import is_loopback
from daemon.strict_yaml import DocumentError

from .support import simulated


def parse(tmp_path: Path, acquisition: dict[str, Any] | None = None, **storage: Any) -> Any:
    doc = {
        "cameras": [simulated()],
        "acquisition": {"frames": 5, **(acquisition or {})},
        "storage": {"store": "s.zarr", **storage},
    }
    return parse_profile(json.dumps(doc), "p.yaml", tmp_path)


def issues(tmp_path: Path, acquisition: dict[str, Any] | None = None, **storage: Any) -> list[tuple[str, str]]:
    with pytest.raises(DocumentError) as caught:
        parse(tmp_path, acquisition, **storage)
    return [(issue.path, issue.message) for issue in caught.value.issues]


def test_defaults(tmp_path: Path) -> None:
    profile = parse(tmp_path)
    assert (profile.acquisition.incomplete, profile.acquisition.metrics_interval_s) == ("drop", 5.0)
    assert profile.worker_endpoint is None


def test_acquisition_keys_are_read_and_checked(tmp_path: Path) -> None:
    profile = parse(tmp_path, {"incomplete": "store", "metrics_interval_s": 1})
    assert profile.acquisition == AcquisitionSettings(frames=5, incomplete="store", metrics_interval_s=1.0)
    assert issues(tmp_path, {"incomplete": "keep"}) == [
        ("acquisition.incomplete", "must be one of drop, store. Got 'keep' instead.")
    ]
    assert issues(tmp_path, {"metrics_interval_s": 0.01}) == [
        ("acquisition.metrics_interval_s", "must be between 0.1 and 3600 seconds. Got 0.01 instead.")
    ]


@pytest.mark.parametrize("host", ["127.0.0.1", "127.3.2.1", "localhost", "[::1]"])
def test_a_loopback_worker_endpoint_is_accepted(tmp_path: Path, host: str) -> None:
    assert parse(tmp_path, worker_endpoint=f"tcp://{host}:5560").worker_endpoint == f"tcp://{host}:5560"


def test_a_remote_worker_endpoint_needs_the_opt_in(tmp_path: Path) -> None:
    [(path, message)] = issues(tmp_path, worker_endpoint="tcp://10.0.0.5:5560")
    assert path == "storage.worker_endpoint"
    assert message.startswith("host must be a loopback address (127.0.0.1, ::1, localhost): the frame stream has no")
    profile = parse(tmp_path, worker_endpoint="tcp://10.0.0.5:5560", allow_remote_worker=True)
    assert profile.worker_endpoint == "tcp://10.0.0.5:5560"


@pytest.mark.parametrize(
    ("endpoint", "fragment"),
    [
        ("ipc:///tmp/x.sock", "must be 'tcp://HOST:PORT'"),
        ("tcp://127.0.0.1:0", "needs a fixed port"),
        ("tcp://127.0.0.1:*", "needs a fixed port"),
        ("tcp://127.0.0.1", "tcp endpoint must be 'tcp://HOST:PORT'"),
    ],
)
def test_bad_worker_endpoints(tmp_path: Path, endpoint: str, fragment: str) -> None:
    [(path, message)] = issues(tmp_path, worker_endpoint=endpoint)
    assert path == "storage.worker_endpoint"
    assert fragment in message


def test_loopback_names() -> None:
    assert [is_loopback(h) for h in ("127.0.0.1", "::1", "[::1]", "localhost", "10.0.0.1", "example.org")] == [
        True,
        True,
        True,
        True,
        False,
        False,
    ]
