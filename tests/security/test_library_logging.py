"""The ``ACQD_LOG_LIBRARIES`` knob: botocore & co at WARNING by default, at the asked level through one scrubbing
handler when set, back to WARNING when configured again without it (configure is idempotent)."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
import structlog

from daemon.log import LIBRARIES, LIBRARY_LEVEL_ENV, LibraryHandler, configure


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    saved = structlog.get_config()
    yield
    structlog.configure(**saved)
    configure(libraries="")  # botocore & co back to WARNING, no handler


def handlers(name: str) -> list[logging.Handler]:
    return [h for h in logging.getLogger(name).handlers if isinstance(h, LibraryHandler)]


def test_libraries_stay_at_warning_unless_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(LIBRARY_LEVEL_ENV, raising=False)
    configure("json", "DEBUG", io.StringIO())
    for name in LIBRARIES:
        assert logging.getLogger(name).level == logging.WARNING
        assert handlers(name) == []


def test_the_environment_routes_them_scrubbed_into_the_json_stream(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(LIBRARY_LEVEL_ENV, "debug")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "s3cr3t-value-xyz")
    out = io.StringIO()
    configure("json", "INFO", out)
    configure("json", "INFO", out)  # idempotent: still one handler
    assert all(len(handlers(name)) == 1 for name in LIBRARIES)
    logging.getLogger("botocore.auth").debug("Signature:\n%s", "0a1b" * 16)
    header = "headers={'Authorization': b'AWS4 Credential=AKIDX/2026, Signature=ff'}"
    logging.getLogger("botocore.endpoint").debug(header)
    logging.getLogger("urllib3.connectionpool").debug("token s3cr3t-value-xyz in a message")
    events = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [e["logger"] for e in events] == ["botocore.auth", "botocore.endpoint", "urllib3.connectionpool"]
    assert {e["event"] for e in events} == {"library_log"}
    text = out.getvalue()
    for secret in ("0a1b0a1b", "AKIDX", "Signature=ff", "s3cr3t-value-xyz"):
        assert secret not in text
    configure("json", "INFO", out, libraries="")
    assert all(handlers(name) == [] for name in LIBRARIES)
    assert logging.getLogger("botocore").level == logging.WARNING
