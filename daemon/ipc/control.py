"""The control protocol on the wire: requests, replies, stable error codes, and their JSON encoding.

A request is one JSON object ``{"id", "command", "args", "protocol"}``; its reply carries the same ``id`` and is
either ``{"id", "ok": true, "result", "protocol"}`` or ``{"id", "ok": false, "error": {"code", "message"},
"protocol"}``. The transport (ROUTER server, DEALER/REQ clients) lives in ``control_server.py`` and ``client.py``;
this module only turns bytes into validated values and back.

Design notes:
- :func:`decode_request` never lets a hostile payload escape as anything but :class:`RequestError`, which carries
  the stable :class:`ErrorCode` to answer with and the request id when one could be recovered (else ``None``).
- JSON is strict: UTF-8 only, no NaN/Infinity, no duplicate keys, bounded size; nesting too deep for the parser
  is a ``bad_request`` like any other malformed JSON.
- Output is ASCII JSON (non-ASCII characters escaped), so even a lone surrogate echoed back in an id encodes safely.
- Ids are strings (1..128 characters) or integers within +-2**53, so clients in any language can produce them.
- :func:`request_fingerprint` hashes command and args: the server's reply cache uses it to tell a retry of a
  request (same id, same fingerprint) from an id reused for a different request.
"""

from __future__ import annotations

import enum
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from daemon.errors import ProtocolError

PROTOCOL_VERSION = 1
MAX_REQUEST_BYTES = 1 << 20
MAX_ID_CHARS = 128
MAX_COMMAND_CHARS = 64
_MAX_SAFE_INT = 2**53
_REQUEST_FIELDS = ("id", "command", "args", "protocol")
_MESSAGE_EXCERPT = 200

RequestId = str | int


class ErrorCode(str, enum.Enum):
    """Stable error codes of the control protocol; clients branch on these, never on messages."""

    BAD_REQUEST = "bad_request"  # not a well-formed request: bad JSON, not an object, wrong envelope or fields
    UNKNOWN_COMMAND = "unknown_command"  # the command name is not one this daemon knows
    INVALID_ARGS = "invalid_args"  # the command's arguments are missing, unknown or of the wrong type
    INVALID_PROFILE = "invalid_profile"  # the profile (by name or inline) does not validate
    NOT_FOUND = "not_found"  # no such run or profile
    CONFLICT = "conflict"  # clashes with the current state (camera in use, id reused for another request)
    TOO_LARGE = "too_large"  # the request exceeds the size limit
    UNSUPPORTED_VERSION = "unsupported_version"  # the client speaks another protocol version
    UNAVAILABLE = "unavailable"  # busy or shutting down: retry later (never cached)
    INTERNAL = "internal"  # a bug in the daemon; details are in the daemon log

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True, slots=True)
class Request:
    """One control request, validated."""

    id: RequestId
    command: str
    args: Mapping[str, Any] = field(default_factory=dict)
    protocol: int = PROTOCOL_VERSION

    def __post_init__(self) -> None:
        parse_request_id(self.id)
        parse_command_name(self.command)
        if not isinstance(self.args, Mapping):
            raise ProtocolError(f"args must be a JSON object. Got {_type_name(self.args)} instead.")


@dataclass(frozen=True, slots=True)
class ErrorInfo:
    """The error half of a failed reply: a stable code and a human message."""

    code: str
    message: str


@dataclass(frozen=True, slots=True)
class Reply:
    """One reply: ``error is None`` means success and ``result`` holds the command's JSON result."""

    id: RequestId | None
    result: Any = None
    error: ErrorInfo | None = None
    protocol: int = PROTOCOL_VERSION

    @property
    def ok(self) -> bool:
        return self.error is None

    @classmethod
    def success(cls, request_id: RequestId | None, result: Any) -> Reply:
        return cls(id=request_id, result=result)

    @classmethod
    def failure(cls, request_id: RequestId | None, code: ErrorCode, message: str) -> Reply:
        return cls(id=request_id, error=ErrorInfo(code=code.value, message=message))


class RequestError(ProtocolError):
    """A request that must be answered with an error: its code, and the id when it could be recovered."""

    def __init__(self, code: ErrorCode, message: str, request_id: RequestId | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.request_id = request_id


def parse_request_id(value: object) -> RequestId:
    """Accept a string of 1..128 characters or an integer within +-2**53 (not a bool)."""
    if isinstance(value, str) and 1 <= len(value) <= MAX_ID_CHARS:
        return value
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) <= _MAX_SAFE_INT:
        return value
    raise ProtocolError(
        f"id must be a string of 1..{MAX_ID_CHARS} characters or an integer within +-2**53. "
        f"Got {_excerpt(value)} ({_type_name(value)}) instead."
    )


def parse_command_name(value: object) -> str:
    if isinstance(value, str) and 1 <= len(value) <= MAX_COMMAND_CHARS:
        return value
    raise ProtocolError(
        f"command must be a string of 1..{MAX_COMMAND_CHARS} characters. "
        f"Got {_excerpt(value)} ({_type_name(value)}) instead."
    )


def encode_request(request: Request) -> bytes:
    body = {"id": request.id, "command": request.command, "args": dict(request.args), "protocol": request.protocol}
    return _dumps(body)


def decode_request(data: bytes, max_bytes: int = MAX_REQUEST_BYTES) -> Request:
    """Validate one request payload; every failure is a :class:`RequestError` with the code to answer."""
    if len(data) > max_bytes:
        raise RequestError(ErrorCode.TOO_LARGE, f"request is {len(data)} bytes; the limit is {max_bytes} bytes.")
    try:
        obj = strict_json_loads(data)
    except ProtocolError as exc:
        raise RequestError(ErrorCode.BAD_REQUEST, str(exc)) from exc
    if not isinstance(obj, dict):
        raise RequestError(ErrorCode.BAD_REQUEST, f"a request must be a JSON object. Got {_type_name(obj)} instead.")
    request_id = _recover_id(obj)
    unknown = sorted(set(obj) - set(_REQUEST_FIELDS))
    if unknown:
        raise RequestError(
            ErrorCode.BAD_REQUEST,
            f"unknown request field {unknown[0]!r}; accepted: {', '.join(_REQUEST_FIELDS)}.",
            request_id,
        )
    protocol = obj.get("protocol", PROTOCOL_VERSION)
    if not isinstance(protocol, int) or isinstance(protocol, bool):
        raise RequestError(
            ErrorCode.BAD_REQUEST, f"protocol must be an integer. Got {_type_name(protocol)} instead.", request_id
        )
    if protocol != PROTOCOL_VERSION:
        raise RequestError(
            ErrorCode.UNSUPPORTED_VERSION,
            f"protocol {protocol} is not supported; this daemon speaks protocol {PROTOCOL_VERSION}.",
            request_id,
        )
    args = obj.get("args", {})
    if not isinstance(args, dict):
        raise RequestError(
            ErrorCode.BAD_REQUEST, f"args must be a JSON object. Got {_type_name(args)} instead.", request_id
        )
    try:
        command = parse_command_name(obj.get("command"))
    except ProtocolError as exc:
        raise RequestError(ErrorCode.BAD_REQUEST, str(exc), request_id) from exc
    assert request_id is not None  # _recover_id raised otherwise
    return Request(id=request_id, command=command, args=args, protocol=protocol)


def encode_reply(reply: Reply) -> bytes:
    """Encode a reply; a result that is not plain JSON raises :class:`ProtocolError`."""
    body: dict[str, Any] = {"id": reply.id, "ok": reply.ok, "protocol": reply.protocol}
    if reply.error is None:
        body["result"] = reply.result
    else:
        body["error"] = {"code": reply.error.code, "message": reply.error.message}
    return _dumps(body)


def decode_reply(data: bytes) -> Reply:
    """Validate one reply payload (client side); anything malformed raises :class:`ProtocolError`."""
    obj = strict_json_loads(data)
    if not isinstance(obj, dict):
        raise ProtocolError(f"a reply must be a JSON object. Got {_type_name(obj)} instead.")
    request_id = obj.get("id")
    if request_id is not None:
        request_id = parse_request_id(request_id)
    protocol = obj.get("protocol", PROTOCOL_VERSION)
    if not isinstance(protocol, int) or isinstance(protocol, bool):
        raise ProtocolError(f"reply protocol must be an integer. Got {_type_name(protocol)} instead.")
    ok = obj.get("ok")
    if ok is True:
        return Reply(id=request_id, result=obj.get("result"), protocol=protocol)
    if ok is not False:
        raise ProtocolError(f"reply field ok must be true or false. Got {_excerpt(ok)} instead.")
    error = obj.get("error")
    if not isinstance(error, dict):
        raise ProtocolError(f"a failed reply needs an error object. Got {_type_name(error)} instead.")
    code, message = error.get("code"), error.get("message")
    if not isinstance(code, str) or not code or not isinstance(message, str):
        raise ProtocolError("reply error needs a non-empty string code and a string message.")
    return Reply(id=request_id, error=ErrorInfo(code=_known_code(code), message=message), protocol=protocol)


def request_fingerprint(request: Request) -> str:
    """A digest of command and args: equal for a retry, different for an id reused for another request."""
    canonical = json.dumps([request.command, request.args], sort_keys=True, separators=(",", ":"))
    return hashlib.blake2b(canonical.encode(), digest_size=16).hexdigest()


def strict_json_loads(data: bytes) -> Any:
    """Parse UTF-8 JSON refusing NaN/Infinity and duplicate keys; every failure is a :class:`ProtocolError`."""
    try:
        text = data.decode("utf-8")
        return json.loads(text, object_pairs_hook=_unique_keys, parse_constant=_refuse_constant)
    except UnicodeDecodeError as exc:
        raise ProtocolError(f"not UTF-8 text: invalid byte at offset {exc.start}.") from exc
    except RecursionError as exc:
        raise ProtocolError("not valid JSON: nested too deeply.") from exc
    except ProtocolError:
        raise
    except ValueError as exc:  # JSONDecodeError, and int() digit limits
        raise ProtocolError(f"not valid JSON: {_excerpt(str(exc))}") from exc


def _recover_id(obj: Mapping[str, Any]) -> RequestId | None:
    if "id" not in obj:
        raise RequestError(ErrorCode.BAD_REQUEST, "a request needs an id (a string or an integer).")
    try:
        return parse_request_id(obj["id"])
    except ProtocolError as exc:
        raise RequestError(ErrorCode.BAD_REQUEST, str(exc)) from exc


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ProtocolError(f"not valid JSON: duplicate key {_excerpt(key)}.")
        result[key] = value
    return result


def _refuse_constant(name: str) -> Any:
    raise ProtocolError(f"not valid JSON: {name} is not a JSON number.")


def _dumps(body: Mapping[str, Any]) -> bytes:
    try:
        return json.dumps(body, allow_nan=False, separators=(",", ":")).encode("ascii")
    except (TypeError, ValueError, RecursionError) as exc:
        raise ProtocolError(f"message is not plain JSON: {_excerpt(str(exc))}") from exc


def _known_code(code: str) -> str:
    try:
        return ErrorCode(code)
    except ValueError:
        return code  # a newer daemon's code: keep it as a plain string


def _type_name(value: object) -> str:
    if value is None:
        return "null"
    return {dict: "object", list: "array", str: "string", bool: "boolean"}.get(type(value), type(value).__name__)


def _excerpt(value: object) -> str:
    text = repr(value)
    return text if len(text) <= _MESSAGE_EXCERPT else text[:_MESSAGE_EXCERPT] + "..."
