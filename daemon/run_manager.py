"""The narrow role the control plane needs from the thing that runs acquisitions: the ``RunManager`` Protocol.

The control commands (``daemon/commands.py``) are written against this Protocol only; the real run supervisor
implements it, and the control tests use a small in-test implementation.

Design notes:
- Calls must return promptly. ``runs``, ``stop`` and ``abort`` are called on the control server's loop thread
  (they take a snapshot or *request* a transition and return); ``profiles``, ``validate``, ``start`` and ``reload``
  run on the server's single command worker thread and may take a while (reading files, opening a camera), but
  should not wait for a run to finish. So a manager is called from two threads and must lock its own state.
- Outcomes are signalled with the acqd error hierarchy, which the control plane maps to stable codes:
  :class:`~daemon.errors.ConfigError` -> ``invalid_profile``, :class:`~daemon.errors.NotFoundError` ->
  ``not_found``, :class:`~daemon.errors.ConflictError` -> ``conflict`` (a camera already used by a live run),
  :class:`~daemon.errors.UnavailableError` -> ``unavailable``; anything else is ``internal``.
- ``stop`` is graceful (finish the store, write metadata), ``abort`` is fast (stop now, still leave a readable
  store). Both return the run's status at the time of the request; the end of the run is seen in ``runs()`` and
  on the ``state`` event topic.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from daemon.errors import ConfigError

_PROFILE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
MAX_PROFILE_TEXT_CHARS = 1 << 20


class RunState(str, enum.Enum):
    """Where a run is in its life; the last four are terminal. ``interrupted``: the daemon running it crashed (a
    restarted daemon found it in the run journal and finalised its store; see :mod:`daemon.run_recovery`)."""

    STARTING = "starting"
    RUNNING = "running"
    STOPPING = "stopping"
    FINISHED = "finished"
    ABORTED = "aborted"
    FAILED = "failed"
    INTERRUPTED = "interrupted"

    @property
    def terminal(self) -> bool:
        return self in (RunState.FINISHED, RunState.ABORTED, RunState.FAILED, RunState.INTERRUPTED)

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True, slots=True)
class ProfileSource:
    """Which profile to use: a name from the profile folder, or inline YAML text (exactly one)."""

    name: str | None = None
    text: str | None = None

    def __post_init__(self) -> None:
        if (self.name is None) == (self.text is None):
            raise ConfigError("give exactly one of a profile name or inline profile text.")
        if self.name is not None and (not _PROFILE_NAME.fullmatch(self.name) or ".." in self.name):
            raise ConfigError(
                f"profile name must be 1..128 letters, digits, '_', '.' or '-', not starting with a symbol "
                f"and without '..'. Got {self.name!r} instead."
            )
        if self.text is not None and not 1 <= len(self.text) <= MAX_PROFILE_TEXT_CHARS:
            raise ConfigError(
                f"inline profile text must be 1..{MAX_PROFILE_TEXT_CHARS} characters. Got {len(self.text)} instead."
            )

    def describe(self) -> str:
        return self.name if self.name is not None else "<inline>"


@dataclass(frozen=True, slots=True)
class ProfileInfo:
    """A profile the daemon can start by name."""

    name: str
    path: str
    description: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "path": self.path, "description": self.description}


@dataclass(frozen=True, slots=True)
class RunStatus:
    """A frozen snapshot of one run, as ``status`` reports it.

    ``counts`` holds integer counters (frames acquired, stored, in flight...), ``drops`` the dropped frames by
    reason, ``rates`` per-second figures (frames_per_s, bytes_per_s); keys are snake_case and may grow.
    """

    run_id: str
    state: RunState
    profile: str
    store: str
    started_at: float
    finished_at: float | None = None
    counts: Mapping[str, int] = field(default_factory=dict)
    drops: Mapping[str, int] = field(default_factory=dict)
    rates: Mapping[str, float] = field(default_factory=dict)
    errors: tuple[str, ...] = ()
    resumes: str | None = None  # this run resumes that interrupted run (its store)
    resumed_by: str | None = None  # this interrupted run was resumed by that run
    interrupted_at: float | None = None  # an interrupted run: when its daemon was last seen alive, if known

    def to_json(self) -> dict[str, Any]:
        optional = (("resumes", self.resumes), ("resumed_by", self.resumed_by), ("interrupted_at", self.interrupted_at))
        links = {name: value for name, value in optional if value is not None}
        return {
            **links,
            "run_id": self.run_id,
            "state": self.state.value,
            "profile": self.profile,
            "store": self.store,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "counts": dict(self.counts),
            "drops": dict(self.drops),
            "rates": dict(self.rates),
            "errors": list(self.errors),
        }


class RunManager(Protocol):
    """What the control commands need from the run supervisor (see the module notes for threads and errors)."""

    def profiles(self) -> Sequence[ProfileInfo]:
        """The profiles that can be started by name."""
        ...

    def validate(self, source: ProfileSource, overrides: Mapping[str, Any]) -> Mapping[str, Any]:
        """Check a profile without running it; return a JSON summary of what a run would produce."""
        ...

    def start(self, source: ProfileSource, overrides: Mapping[str, Any]) -> str:
        """Start a run and return its id once it is registered (do not wait for frames)."""
        ...

    def resume(self, run_id: str, source: ProfileSource | None, overrides: Mapping[str, Any]) -> str:
        """Start a run appending to the store of the interrupted run ``run_id`` (its journal's profile unless
        ``source`` is given); returns the new run's id. NotFoundError, ConflictError (not resumable now),
        ConfigError (the profile does not match the store)."""
        ...

    def stop(self, run_id: str) -> RunStatus:
        """Request a graceful stop (finalise the store); return promptly."""
        ...

    def abort(self, run_id: str) -> RunStatus:
        """Request a fast stop that still leaves a readable store; return promptly."""
        ...

    def runs(self) -> Sequence[RunStatus]:
        """A snapshot of every run the daemon knows (live and recently finished); must not block."""
        ...

    def reload(self) -> Mapping[str, Any]:
        """Re-read the profile folder (and settings); return a JSON summary of what was loaded."""
        ...
