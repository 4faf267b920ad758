"""What a frame receiver hands its worker: a :class:`ReceivedFrame` (header and a zero-copy view of the pixels), or
the :class:`EndOfStream` (see :mod:`daemon.ipc.frame_receiver`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy.typing as npt

from daemon.ipc.frame import Frame
from daemon.ipc.header import FrameHeader


@dataclass(frozen=True, slots=True)
class ReceivedFrame:
    """One frame as received: its header and a read-only, zero-copy view of its pixels."""

    header: FrameHeader
    pixels: npt.NDArray[Any]

    @property
    def seq(self) -> int:
        return self.header.seq

    @property
    def key(self) -> str:
        return self.header.key

    @property
    def nbytes(self) -> int:
        return int(self.pixels.nbytes)

    def to_frame(self) -> Frame:
        h = self.header
        return Frame(self.pixels, h.frame_id, h.host_time_ns, h.device_timestamp_ns, h.flags)


@dataclass(frozen=True, slots=True)
class EndOfStream:
    """The sender finished: it sent ``frames`` frames, sequence numbers below ``next_seq``."""

    frames: int
    next_seq: int
