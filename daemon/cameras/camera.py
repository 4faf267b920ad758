"""The camera interface: the ``Camera`` protocol, its lifecycle states and its statistics.

Every frame source (simulated, GenICam) implements :class:`Camera`; the run supervisor only knows this module.

Design notes:
- Lifecycle: ``NEW --open--> OPEN --configure--> CONFIGURED --start--> ACQUIRING --stop--> CONFIGURED``;
  ``close()`` from any state ends in ``CLOSED`` and is idempotent. ``configure()`` may be repeated while not
  acquiring; ``stop()`` when not acquiring does nothing. A method called in the wrong state raises
  :class:`~daemon.errors.CameraError` naming the state. A closed camera cannot be reopened: make a new one.
- ``read(timeout_s)`` returns one :class:`~daemon.ipc.frame.Frame` or ``None`` when none arrived within
  ``timeout_s`` (normal while waiting for a trigger). It raises :class:`~daemon.errors.CameraTimeout` when the
  camera's own watchdog (its settings' ``timeout_s``) sees no frame for that long while one is expected (free
  run, or a trigger pending); the watchdog then re-arms, so the caller may keep reading. It raises
  :class:`~daemon.errors.CameraLost` when the device is gone (after any reconnect attempts, which may hold
  ``read`` longer than ``timeout_s``).
- Frame ids are the camera's counter; they start again with each ``start()`` and increase strictly within an
  acquisition. A jump is counted in :class:`CameraStats` and flags the frame ``AFTER_GAP``.
- Threads: one thread drives the camera (open ... close). ``trigger()`` and ``stats`` may be called from another.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from daemon.errors import CameraError
from daemon.ipc.frame import Frame, FrameFlags


class CameraState(enum.Enum):
    """Where a camera is in its lifecycle."""

    NEW = "new"
    OPEN = "open"
    CONFIGURED = "configured"
    ACQUIRING = "acquiring"
    CLOSED = "closed"


@dataclass(frozen=True, slots=True)
class CameraStats:
    """A snapshot of what a camera delivered since it was opened."""

    frames_delivered: int = 0
    incomplete_frames: int = 0  # delivered with FrameFlags.INCOMPLETE
    frames_lost: int = 0  # sum of frame-id gaps: frames that never reached us
    gaps: int = 0  # number of frame-id jumps
    reconnects: int = 0  # successful reconnections after the device was lost


@dataclass(frozen=True, slots=True)
class FrameLayout:
    """The pixels a configured camera delivers: ``shape`` is ``(y, x)`` or ``(y, x, c)``."""

    shape: tuple[int, ...]
    dtype: np.dtype[Any]

    @property
    def nbytes(self) -> int:
        count = 1
        for n in self.shape:
            count *= n
        return count * self.dtype.itemsize


class Camera(Protocol):
    """A frame source with an explicit lifecycle (see the module docstring).

    Conformance is checked statically (mypy, through :func:`daemon.cameras.factory.create_camera`) and by the
    contract tests; it is not ``runtime_checkable`` because probing ``layout`` before ``configure()`` raises.
    """

    @property
    def state(self) -> CameraState: ...

    @property
    def layout(self) -> FrameLayout:
        """The frame layout; known after ``configure()`` (CameraError before)."""
        ...

    @property
    def shape(self) -> tuple[int, ...]: ...

    @property
    def dtype(self) -> np.dtype[Any]: ...

    @property
    def stats(self) -> CameraStats: ...

    @property
    def info(self) -> Mapping[str, str]:
        """What identifies the device (vendor, model, serial_number, ...); empty before ``open()``."""
        ...

    def open(self) -> None: ...

    def configure(self) -> None:
        """Apply the settings to the device."""
        ...

    def start(self) -> None: ...

    def read(self, timeout_s: float) -> Frame | None: ...

    def trigger(self) -> None:
        """Ask for one frame (software trigger); CameraError when the camera is not software-triggered."""
        ...

    def stop(self) -> None: ...

    def close(self) -> None: ...


class Lifecycle:
    """The state machine shared by camera implementations (composition, not inheritance)."""

    __slots__ = ("_name", "state")

    def __init__(self, name: str) -> None:
        self._name = name
        self.state = CameraState.NEW

    def require(self, action: str, *allowed: CameraState) -> None:
        """Raise CameraError unless the state is one of ``allowed``."""
        if self.state not in allowed:
            accepted = ", ".join(s.value for s in allowed)
            raise CameraError(
                f"{self._name}: cannot {action} while {self.state.value}; {action} needs state {accepted}."
            )


class FrameCounter:
    """Counts delivered frames, incomplete frames and frame-id gaps; gives each frame its flags."""

    __slots__ = ("_delivered", "_gaps", "_incomplete", "_last_id", "_lost", "_reconnects")

    def __init__(self) -> None:
        self._delivered = 0
        self._incomplete = 0
        self._lost = 0
        self._gaps = 0
        self._reconnects = 0
        self._last_id: int | None = None

    @property
    def last_id(self) -> int | None:
        return self._last_id

    def begin(self) -> None:
        """A new acquisition: the next id starts a fresh sequence."""
        self._last_id = None

    def observe(self, frame_id: int, incomplete: bool) -> FrameFlags:
        """Record one delivered frame and return its flags."""
        flags = FrameFlags.INCOMPLETE if incomplete else FrameFlags.NONE
        if self._last_id is not None and frame_id > self._last_id + 1:
            self._gaps += 1
            self._lost += frame_id - self._last_id - 1
            flags |= FrameFlags.AFTER_GAP
        self._last_id = frame_id
        self._delivered += 1
        self._incomplete += int(incomplete)
        return flags

    def count_lost(self, frames: int) -> None:
        """Record frames known lost without a frame-id jump to show it (e.g. across a reconnect)."""
        if frames > 0:
            self._gaps += 1
            self._lost += frames

    def count_reconnect(self) -> None:
        self._reconnects += 1

    def snapshot(self) -> CameraStats:
        return CameraStats(
            frames_delivered=self._delivered,
            incomplete_frames=self._incomplete,
            frames_lost=self._lost,
            gaps=self._gaps,
            reconnects=self._reconnects,
        )
