"""``start`` with ``resume``: the args it accepts (a run id, an optional profile), what reaches the manager, and
``acqd ctl start --resume`` building those args."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from daemon import commands
from daemon.cli import build_parser
from daemon.ctl import _call_args
from daemon.ipc.control import ErrorCode, Reply, Request
from daemon.run_manager import ProfileSource


class ResumeRecorder:
    """Records ``resume``/``start`` calls (only what these tests call)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any, Any, Mapping[str, Any]]] = []

    def resume(self, run_id: str, source: ProfileSource | None, overrides: Mapping[str, Any]) -> str:
        self.calls.append(("resume", run_id, source, overrides))
        return "new-run"

    def start(self, source: ProfileSource, overrides: Mapping[str, Any]) -> str:
        self.calls.append(("start", None, source, overrides))
        return "plain-run"


def run(args: dict[str, Any]) -> tuple[Reply, ResumeRecorder]:
    manager = ResumeRecorder()
    prepared = commands.prepare(Request(id="1", command="start", args=args))
    if isinstance(prepared, Reply):
        return prepared, manager
    ctx = commands.CommandContext(manager=manager, server_info=dict)  # type: ignore[arg-type]
    return commands.execute(ctx, prepared), manager


def test_resume_alone_uses_the_journal_profile() -> None:
    reply, manager = run({"resume": "old-run", "overrides": {"acquisition.frames": 5}})
    assert reply.ok, reply
    assert reply.result == {"run_id": "new-run", "resumes": "old-run"}
    assert manager.calls == [("resume", "old-run", None, {"acquisition.frames": 5})]


def test_resume_with_a_profile_passes_it_on() -> None:
    reply, manager = run({"resume": "old-run", "name": "demo"})
    assert reply.ok, reply
    assert manager.calls == [("resume", "old-run", ProfileSource(name="demo"), {})]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"resume": 7}, "args.resume must be a string of 1..128 characters"),
        ({"resume": ""}, "args.resume must be a string of 1..128 characters"),
        ({"resume": "x", "name": "a", "yaml": "b"}, "give exactly one of args.name"),
        ({"resume": "x", "resumes": "y"}, "unknown argument 'resumes'"),
    ],
)
def test_bad_resume_args_are_invalid_args(args: dict[str, Any], message: str) -> None:
    reply, manager = run(args)
    assert reply.error is not None
    assert reply.error.code == ErrorCode.INVALID_ARGS.value
    assert message in reply.error.message
    assert manager.calls == []


def test_start_without_resume_still_needs_a_profile() -> None:
    reply, _ = run({})
    assert reply.error is not None
    assert "give exactly one of args.name" in reply.error.message


def test_ctl_start_resume_builds_the_args() -> None:
    parser = build_parser()
    assert _call_args(parser.parse_args(["ctl", "start", "--resume", "old-run"])) == {"resume": "old-run"}
    args = parser.parse_args(["ctl", "start", "demo", "--resume", "old-run", "--set", "acquisition.frames=3"])
    assert _call_args(args) == {"resume": "old-run", "name": "demo", "overrides": {"acquisition.frames": 3}}
