"""The frame: what a camera delivers and what storage receives.

This module is the contract between ``daemon.cameras`` and ``daemon.storage``; neither imports the other.

Design notes:
- ``pixels`` is owned by the frame (never a view into a driver buffer that will be re-queued), or read-only and
  never changed again (a simulated camera's cached frames, shared by the frames of one phase), C-contiguous,
  2-D ``(y, x)`` for monochrome formats or 3-D ``(y, x, c)`` for packed colour formats.
- ``frame_id`` is the camera's own counter (gaps mean frames lost before they reached us).
- Times are integers in nanoseconds: ``host_time_ns`` from ``time.time_ns()`` when the frame was received,
  ``device_timestamp_ns`` from the device when it gives one.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt


class FrameFlags(enum.IntFlag):
    """Per-frame condition flags; stored in the per-frame table."""

    NONE = 0
    INCOMPLETE = 1  # the device delivered a partial buffer
    AFTER_GAP = 2  # frame ids jumped before this frame (frames were lost upstream)


@dataclass(frozen=True, slots=True)
class Frame:
    """One frame, owned, with its identity and timing."""

    pixels: npt.NDArray[np.generic]
    frame_id: int
    host_time_ns: int
    device_timestamp_ns: int | None = None
    flags: FrameFlags = FrameFlags.NONE

    @property
    def incomplete(self) -> bool:
        return bool(self.flags & FrameFlags.INCOMPLETE)

    @property
    def nbytes(self) -> int:
        return int(self.pixels.nbytes)
