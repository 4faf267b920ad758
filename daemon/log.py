"""structlog configuration: JSON lines for journald, a console renderer on a terminal.

Design notes:
- One call, :func:`configure`, at process start (CLI, worker, daemon). Libraries only call :func:`get_logger`.
- ``merge_contextvars`` lets a run bind ``run_id`` once (``structlog.contextvars.bind_contextvars``) and have it on
  every event of that run.
- :func:`redact` removes values of keys that look like secrets, so credentials never reach the journal.
- botocore/boto3/urllib3 are kept at WARNING: at DEBUG they print request headers.
- Each event is written with one ``write`` call (:class:`LineLogger`): a run and its storage worker share stdout,
  and with ``PYTHONUNBUFFERED`` structlog's PrintLogger (``print``) writes the line and its newline separately,
  so lines of the two processes could interleave into invalid JSON.
"""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import MutableMapping
from typing import Any, Literal, TextIO

import structlog

LogFormat = Literal["json", "console", "auto"]

_SECRET_WORDS = ("secret", "password", "token", "credential", "access_key", "authorization", "private")
REDACTED = "***"


def redact(_logger: Any, _method: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """structlog processor: blank out values whose key names a secret."""
    for key in list(event_dict):
        lowered = key.lower()
        if any(word in lowered for word in _SECRET_WORDS):
            event_dict[key] = REDACTED
    return event_dict


_LINE_LOCK = threading.Lock()


class LineLogger:
    """A structlog logger writing each event as one line in a single ``write`` (then flush).

    Writes to ``file``, or to the current ``sys.stdout`` when none is given (as PrintLogger does for stdout)."""

    def __init__(self, file: TextIO | None = None) -> None:
        self._file = file

    def msg(self, message: str) -> None:
        out = self._file if self._file is not None else sys.stdout
        with _LINE_LOCK:
            out.write(message + "\n")
            out.flush()

    log = debug = info = warn = warning = error = err = critical = exception = fatal = failure = msg


def configure(fmt: LogFormat = "auto", level: str = "INFO", stream: TextIO | None = None) -> None:
    """Configure structlog for this process (idempotent; the last call wins)."""
    out = stream if stream is not None else sys.stdout
    use_console = fmt == "console" or (fmt == "auto" and out.isatty())
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        numeric = logging.INFO
    renderer: Any = structlog.dev.ConsoleRenderer(colors=False) if use_console else structlog.processors.JSONRenderer()
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            redact,
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=lambda *_args: LineLogger(stream),
        cache_logger_on_first_use=False,
    )
    for noisy in ("botocore", "boto3", "urllib3", "s3transfer"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def get_logger(name: str | None = None, **initial: Any) -> Any:
    """A structlog logger; ``name`` becomes the ``component`` field of every event."""
    if name is not None:
        initial["component"] = name
    return structlog.get_logger(**initial)
