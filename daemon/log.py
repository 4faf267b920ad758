"""structlog configuration: JSON lines for journald, a console renderer on a terminal.

Design notes:
- One call, :func:`configure`, at process start (CLI, worker, daemon). Libraries only call :func:`get_logger`.
- ``merge_contextvars`` lets a run bind ``run_id`` once (``structlog.contextvars.bind_contextvars``) and have it on
  every event of that run.
- :func:`redact` removes values of keys that look like secrets, so credentials never reach the journal.
- botocore/boto3/urllib3 are kept at WARNING: at DEBUG they print request headers. To debug S3 anyway, set
  ``ACQD_LOG_LIBRARIES=DEBUG`` (:data:`LIBRARY_LEVEL_ENV`; the storage worker inherits it): their records then go
  through :class:`LibraryHandler` as ``library_log`` events (fields ``logger``, ``message``) in the same JSON
  stream, with :func:`scrub_credentials` applied to the text (``Authorization`` values, ``Credential=``,
  ``Signature=``, ``X-Amz-*`` credentials, botocore's ``Signature:`` line, and the AWS_* credential values of the
  environment).
- Each event is written with one ``write`` call (:class:`LineLogger`): a run and its storage worker share stdout,
  and with ``PYTHONUNBUFFERED`` structlog's PrintLogger (``print``) writes the line and its newline separately,
  so lines of the two processes could interleave into invalid JSON.
"""

from __future__ import annotations

import logging
import os
import re
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


LIBRARY_LEVEL_ENV = "ACQD_LOG_LIBRARIES"
LIBRARIES = ("botocore", "boto3", "urllib3", "s3transfer")
_CREDENTIAL_ENV = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")
_CREDENTIAL_PATTERNS = (
    re.compile(r"(?i)(authorization['\"]?\s*[:=]\s*b?['\"]?)[^'\"\n]*"),
    re.compile(r"(?i)((?:x-amz-)?(?:credential|signature|security-token|security_token)=)[^,&\s'\"]*"),
    re.compile(r"(?i)(x-amz-security-token['\"]?\s*[:=]\s*b?['\"]?)[^'\"\n]*"),
    re.compile(r"(Signature:\s*)[0-9a-fA-F]+"),
    re.compile(r"(<(?:AWSAccessKeyId|SignatureProvided|StringToSign|CanonicalRequest)>)[^<]*"),
)


def scrub_credentials(text: str, values: tuple[str, ...] = ()) -> str:
    """``text`` with signing material and every one of ``values`` replaced by ``***``."""
    for pattern in _CREDENTIAL_PATTERNS:
        text = pattern.sub(rf"\g<1>{REDACTED}", text)
    for value in values:
        if value:
            text = text.replace(value, REDACTED)
    return text


class LibraryHandler(logging.Handler):
    """Forwards stdlib records of the noisy libraries to a structlog logger as ``library_log`` events, scrubbed."""

    def __init__(self, logger: Any, level: int) -> None:
        super().__init__(level)
        self._logger = logger
        self._values = tuple(value for name in _CREDENTIAL_ENV if len(value := os.environ.get(name, "")) >= 4)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = scrub_credentials(record.getMessage(), self._values)
        except (TypeError, ValueError):
            message = f"unformattable {record.levelname} record from {record.name}"
        level = max(logging.DEBUG, min(logging.CRITICAL, record.levelno // 10 * 10))
        self._logger.log(level, "library_log", logger=record.name, message=message)


def _route_libraries(processors: list[Any], stream: TextIO | None, level_name: str | None) -> None:
    """Libraries at WARNING (stdlib's last-resort handler), or at ``level_name`` through a LibraryHandler."""
    numeric = logging.getLevelName(level_name.upper()) if level_name else None
    for name in LIBRARIES:
        library = logging.getLogger(name)
        for handler in [h for h in library.handlers if isinstance(h, LibraryHandler)]:
            library.removeHandler(handler)
        library.propagate = True
        library.setLevel(numeric if isinstance(numeric, int) else logging.WARNING)
        if isinstance(numeric, int):
            logger = structlog.wrap_logger(
                LineLogger(stream),
                processors=processors,
                wrapper_class=structlog.make_filtering_bound_logger(numeric),
            )
            library.addHandler(LibraryHandler(logger, numeric))
            library.propagate = False


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


def configure(
    fmt: LogFormat = "auto", level: str = "INFO", stream: TextIO | None = None, libraries: str | None = None
) -> None:
    """Configure structlog for this process (idempotent; the last call wins). ``libraries`` is the level of
    botocore & co (default: ``$ACQD_LOG_LIBRARIES``, else they stay at WARNING)."""
    out = stream if stream is not None else sys.stdout
    use_console = fmt == "console" or (fmt == "auto" and out.isatty())
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        numeric = logging.INFO
    renderer: Any = structlog.dev.ConsoleRenderer(colors=False) if use_console else structlog.processors.JSONRenderer()
    processors = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        redact,
        structlog.processors.format_exc_info,
        renderer,
    ]
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=lambda *_args: LineLogger(stream),
        cache_logger_on_first_use=False,
    )
    _route_libraries(processors, stream, libraries if libraries is not None else os.environ.get(LIBRARY_LEVEL_ENV))


def get_logger(name: str | None = None, **initial: Any) -> Any:
    """A structlog logger; ``name`` becomes the ``component`` field of every event."""
    if name is not None:
        initial["component"] = name
    return structlog.get_logger(**initial)
