"""The control commands: one small class per command, each validating its args and then executing them.

The server (``daemon/ipc/control_server.py``) calls :func:`prepare` on its loop thread (cheap: look the command
up, check its args) and :func:`execute` either on the loop (``inline`` commands) or on its command worker thread.
Commands talk to the daemon only through the :class:`~daemon.run_manager.RunManager` Protocol.

Design notes:
- ``inline`` commands (ping, hello, status, stop, abort) must be quick: they take snapshots or *request* state
  changes. The others (profiles, validate, start, reload) may read files or open cameras, so the server runs them
  one at a time on its worker thread and ``ping`` stays fast meanwhile.
- Exceptions become stable codes in one place, :func:`error_reply`: an acqd ``ConfigError`` raised while checking
  args is ``invalid_args``; raised by the manager it is the command's ``config_error_code`` (``invalid_profile``
  for commands that take a profile); ``NotFoundError`` -> ``not_found``, ``ConflictError`` -> ``conflict``,
  ``UnavailableError`` -> ``unavailable``; anything else is ``internal`` and is logged with its traceback.
"""

from __future__ import annotations

import difflib
import os
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, TypeVar

import daemon
from daemon.errors import ConfigError, ConflictError, NotFoundError, UnavailableError
from daemon.ipc.control import PROTOCOL_VERSION, ErrorCode, Reply, Request, RequestId
from daemon.log import get_logger
from daemon.run_manager import ProfileSource, RunManager

log = get_logger("control")

ParamsT = TypeVar("ParamsT")
MAX_OVERRIDES = 256
MAX_OVERRIDE_KEY_CHARS = 256
MAX_RUN_ID_CHARS = 128


@dataclass(frozen=True, slots=True)
class CommandContext:
    """What a command may use: the run manager, the server's own facts, and an optional reload hook."""

    manager: RunManager
    server_info: Callable[[], Mapping[str, Any]]
    reload_hook: Callable[[], Mapping[str, Any]] | None = None


class Command(ABC, Generic[ParamsT]):
    """One command: ``validate`` turns JSON args into params (or raises ConfigError), ``execute`` runs them."""

    name: ClassVar[str]
    summary: ClassVar[str]
    inline: ClassVar[bool] = False
    config_error_code: ClassVar[ErrorCode] = ErrorCode.INVALID_ARGS

    @abstractmethod
    def validate(self, args: Mapping[str, Any]) -> ParamsT: ...

    @abstractmethod
    def execute(self, ctx: CommandContext, params: ParamsT) -> Any: ...


@dataclass(frozen=True, slots=True)
class Prepared:
    """A request whose command exists and whose args validated: ready to execute."""

    request: Request
    command: Command[Any]
    params: Any

    @property
    def inline(self) -> bool:
        return self.command.inline


@dataclass(frozen=True, slots=True)
class ProfileParams:
    source: ProfileSource
    overrides: Mapping[str, Any]


class _Args:
    """Reads one command's args: unknown keys refused with a suggestion, types checked, messages name the field."""

    def __init__(self, command: str, args: Mapping[str, Any], accepted: tuple[str, ...]) -> None:
        self._command = command
        self._args = args
        for key in args:
            if key not in accepted:
                hint = difflib.get_close_matches(key, accepted, n=1)
                suggestion = f" Did you mean {hint[0]!r}?" if hint else ""
                allowed = ", ".join(accepted) if accepted else "none"
                raise ConfigError(f"{command}: unknown argument {key[:64]!r}; accepted: {allowed}.{suggestion}")

    def optional_str(self, key: str, max_chars: int = MAX_RUN_ID_CHARS) -> str | None:
        value = self._args.get(key)
        if value is None:
            return None
        if not isinstance(value, str) or not 1 <= len(value) <= max_chars:
            raise ConfigError(
                f"{self._command}: args.{key} must be a string of 1..{max_chars} characters. "
                f"Got {_describe(value)} instead."
            )
        return value

    def required_str(self, key: str, max_chars: int = MAX_RUN_ID_CHARS) -> str:
        value = self.optional_str(key, max_chars)
        if value is None:
            raise ConfigError(f"{self._command}: args.{key} is required (a string).")
        return value

    def overrides(self) -> Mapping[str, Any]:
        value = self._args.get("overrides", {})
        if not isinstance(value, dict):
            raise ConfigError(f"{self._command}: args.overrides must be an object. Got {_describe(value)} instead.")
        if len(value) > MAX_OVERRIDES:
            raise ConfigError(f"{self._command}: args.overrides has {len(value)} keys; at most {MAX_OVERRIDES}.")
        for key in value:
            if not 1 <= len(key) <= MAX_OVERRIDE_KEY_CHARS:
                raise ConfigError(
                    f"{self._command}: args.overrides keys must be 1..{MAX_OVERRIDE_KEY_CHARS} characters "
                    f"(a dotted field path such as 'acquisition.frames'). Got {_describe(key)} instead."
                )
        return value

    def profile(self) -> ProfileParams:
        name = self.optional_str("name")
        text = self.optional_str("yaml", max_chars=1 << 20)
        if (name is None) == (text is None):
            raise ConfigError(f"{self._command}: give exactly one of args.name (a profile) or args.yaml (inline).")
        try:
            source = ProfileSource(name=name, text=text)
        except ConfigError as exc:
            raise ConfigError(f"{self._command}: {exc}") from exc
        return ProfileParams(source=source, overrides=self.overrides())


class PingCommand(Command[None]):
    name = "ping"
    summary = "liveness check; answered on the server loop"
    inline = True

    def validate(self, args: Mapping[str, Any]) -> None:
        _Args(self.name, args, ())

    def execute(self, ctx: CommandContext, params: None) -> Any:
        return {"pong": True, "time": time.time()}


class HelloCommand(Command[str | None]):
    name = "hello"
    summary = "protocol version, daemon version, commands and error codes, for compatibility checks"
    inline = True

    def validate(self, args: Mapping[str, Any]) -> str | None:
        return _Args(self.name, args, ("client",)).optional_str("client")

    def execute(self, ctx: CommandContext, params: str | None) -> Any:
        log.info("control_hello", client=params)
        info = ctx.server_info()
        return {
            "daemon": "acqd",
            "version": daemon.__version__,
            "protocol": PROTOCOL_VERSION,
            "protocols": [PROTOCOL_VERSION],
            "commands": {name: command.summary for name, command in sorted(COMMANDS.items())},
            "error_codes": [code.value for code in ErrorCode],
            "max_request_bytes": info.get("max_request_bytes"),
        }


class StatusCommand(Command[str | None]):
    name = "status"
    summary = "the daemon and every run (or one run): state, counts, drops, rates, store, errors"
    inline = True

    def validate(self, args: Mapping[str, Any]) -> str | None:
        return _Args(self.name, args, ("run_id",)).optional_str("run_id")

    def execute(self, ctx: CommandContext, params: str | None) -> Any:
        runs = [run.to_json() for run in ctx.manager.runs() if params is None or run.run_id == params]
        if params is not None and not runs:
            raise NotFoundError(f"status: no run with id {params!r}.")
        daemon_info = {"version": daemon.__version__, "protocol": PROTOCOL_VERSION, "pid": os.getpid()}
        return {"daemon": {**daemon_info, **ctx.server_info()}, "runs": runs}


class ProfilesCommand(Command[None]):
    name = "profiles"
    summary = "the profiles that can be started by name"

    def validate(self, args: Mapping[str, Any]) -> None:
        _Args(self.name, args, ())

    def execute(self, ctx: CommandContext, params: None) -> Any:
        return {"profiles": [profile.to_json() for profile in ctx.manager.profiles()]}


class ValidateCommand(Command[ProfileParams]):
    name = "validate"
    summary = "check a profile (args.name or args.yaml, optional args.overrides) without running it"
    config_error_code = ErrorCode.INVALID_PROFILE

    def validate(self, args: Mapping[str, Any]) -> ProfileParams:
        return _Args(self.name, args, ("name", "yaml", "overrides")).profile()

    def execute(self, ctx: CommandContext, params: ProfileParams) -> Any:
        summary = ctx.manager.validate(params.source, params.overrides)
        return {"valid": True, "profile": params.source.describe(), "summary": dict(summary)}


@dataclass(frozen=True, slots=True)
class StartParams:
    """``start``: a profile, or with ``resume`` the interrupted run whose store to append to (profile optional)."""

    source: ProfileSource | None
    overrides: Mapping[str, Any]
    resume: str | None = None


class StartCommand(Command[StartParams]):
    name = "start"
    summary = (
        "start a run from a profile (args.name or args.yaml, optional args.overrides); with args.resume (a run id), "
        "append to that interrupted run's store (its journal's profile unless one is given); returns run_id"
    )
    config_error_code = ErrorCode.INVALID_PROFILE

    def validate(self, args: Mapping[str, Any]) -> StartParams:
        reader = _Args(self.name, args, ("name", "yaml", "overrides", "resume"))
        resume = reader.optional_str("resume")
        if resume is not None and args.get("name") is None and args.get("yaml") is None:
            return StartParams(None, reader.overrides(), resume)
        profile = reader.profile()
        return StartParams(profile.source, profile.overrides, resume)

    def execute(self, ctx: CommandContext, params: StartParams) -> Any:
        if params.resume is not None:
            run_id = ctx.manager.resume(params.resume, params.source, params.overrides)
            log.info("control_run_resumed", run_id=run_id, resumes=params.resume)
            return {"run_id": run_id, "resumes": params.resume}
        assert params.source is not None
        run_id = ctx.manager.start(params.source, params.overrides)
        log.info("control_run_started", run_id=run_id, profile=params.source.describe())
        return {"run_id": run_id}


class StopCommand(Command[str]):
    name = "stop"
    summary = "graceful stop of args.run_id (the store is finalised); returns the run status"
    inline = True

    def validate(self, args: Mapping[str, Any]) -> str:
        return _Args(self.name, args, ("run_id",)).required_str("run_id")

    def execute(self, ctx: CommandContext, params: str) -> Any:
        return ctx.manager.stop(params).to_json()


class AbortCommand(Command[str]):
    name = "abort"
    summary = "fast stop of args.run_id (the store stays readable); returns the run status"
    inline = True

    def validate(self, args: Mapping[str, Any]) -> str:
        return _Args(self.name, args, ("run_id",)).required_str("run_id")

    def execute(self, ctx: CommandContext, params: str) -> Any:
        return ctx.manager.abort(params).to_json()


class ReloadCommand(Command[None]):
    name = "reload"
    summary = "re-read the profile folder (and the allowed client keys when CURVE is on)"

    def validate(self, args: Mapping[str, Any]) -> None:
        _Args(self.name, args, ())

    def execute(self, ctx: CommandContext, params: None) -> Any:
        result = dict(ctx.manager.reload())
        if ctx.reload_hook is not None:
            result["control"] = dict(ctx.reload_hook())
        return result


COMMANDS: Mapping[str, Command[Any]] = {
    command.name: command
    for command in (
        PingCommand(),
        HelloCommand(),
        StatusCommand(),
        ProfilesCommand(),
        ValidateCommand(),
        StartCommand(),
        StopCommand(),
        AbortCommand(),
        ReloadCommand(),
    )
}


def prepare(request: Request) -> Prepared | Reply:
    """Look the command up and validate its args; an error :class:`Reply` when either fails."""
    command = COMMANDS.get(request.command)
    if command is None:
        hint = difflib.get_close_matches(request.command, list(COMMANDS), n=1)
        suggestion = f" Did you mean {hint[0]!r}?" if hint else ""
        message = f"unknown command {request.command!r}; known: {', '.join(sorted(COMMANDS))}.{suggestion}"
        return Reply.failure(request.id, ErrorCode.UNKNOWN_COMMAND, message)
    try:
        params = command.validate(request.args)
    except ConfigError as exc:
        return Reply.failure(request.id, ErrorCode.INVALID_ARGS, str(exc))
    return Prepared(request=request, command=command, params=params)


def execute(ctx: CommandContext, prepared: Prepared) -> Reply:
    """Run a prepared command; every exception becomes an error reply with a stable code."""
    request = prepared.request
    try:
        result = prepared.command.execute(ctx, prepared.params)
    except Exception as exc:  # translated to a stable code below; internal errors are logged with a traceback
        return error_reply(request.id, prepared.command, exc)
    return Reply.success(request.id, result)


def error_reply(request_id: RequestId, command: Command[Any], exc: Exception) -> Reply:
    """Map an exception raised while executing ``command`` to an error reply."""
    code = _code_for(command, exc)
    if code is ErrorCode.INTERNAL:
        log.error("control_command_failed", command=command.name, request_id=request_id, exc_info=exc)
        return Reply.failure(request_id, code, f"{command.name}: internal error ({type(exc).__name__}); see the log.")
    return Reply.failure(request_id, code, str(exc))


def _code_for(command: Command[Any], exc: Exception) -> ErrorCode:
    if isinstance(exc, ConfigError):
        return command.config_error_code
    if isinstance(exc, NotFoundError):
        return ErrorCode.NOT_FOUND
    if isinstance(exc, ConflictError):
        return ErrorCode.CONFLICT
    if isinstance(exc, UnavailableError):
        return ErrorCode.UNAVAILABLE
    return ErrorCode.INTERNAL


def _describe(value: object) -> str:
    text = repr(value)
    text = text if len(text) <= 80 else text[:80] + "..."
    return f"{text} ({type(value).__name__})"
