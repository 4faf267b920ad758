"""Frame slots: reusable frame-sized buffers in a shared region, for a camera that must copy its frames out.

A GenICam camera copies every image out of the producer's buffer, which it must give back at once. Copied into a
slot of a :class:`~daemon.ipc.shared_region.SharedRegion` instead of fresh private memory, the frame then reaches
a worker on this host by reference, with no second copy into the frame ring (:mod:`daemon.ipc.shared_region`).

Design notes:
- A slot is taken for one frame (:meth:`FrameSlots.take`) and comes back by itself when the last array viewing it
  is gone: the frame dropped, stored, or lent to the worker and consumed (the sender holds lent frames until
  then). Each slot is its own array over the region (numpy points every view of it back to that array), and a
  ``weakref.finalize`` on it returns the slot, so no caller has to remember to give it back.
- When every slot is taken (the queue backed up), :meth:`take` returns None and the camera copies into private
  memory as before: slots are a fast path, never a condition for taking a frame.
- Where no region can be made (not Linux, a file size limit), there are no slots: :meth:`create` returns None.
- Thread-safe: a camera thread takes, whichever thread drops the last view gives back.
"""

from __future__ import annotations

import math
import threading
import weakref
from collections import deque
from typing import Any

import numpy as np
import numpy.typing as npt

from daemon.ipc.shared_region import SharedRegion


class FrameSlots:
    def __init__(self, region: SharedRegion, count: int, shape: tuple[int, ...], dtype: np.dtype[Any]) -> None:
        self._region = region
        self._shape = shape
        self._dtype = dtype
        self._slot_bytes = math.prod(shape) * dtype.itemsize
        self._lock = threading.Lock()
        self._free: deque[int] = deque(range(count))
        self._count = count
        self.misses = 0  # frames that found every slot taken

    @classmethod
    def create(cls, count: int, shape: tuple[int, ...], dtype: npt.DTypeLike) -> FrameSlots | None:
        """``count`` slots of frames of ``shape`` and ``dtype``; None where no shared region can be made."""
        kind = np.dtype(dtype)
        nbytes = count * math.prod(shape) * kind.itemsize
        if count < 1 or nbytes < 1:
            return None
        try:
            region = SharedRegion.create(nbytes, "acqd-frame-slots")
        except OSError:
            return None
        return cls(region, count, shape, kind)

    @property
    def count(self) -> int:
        return self._count

    @property
    def nbytes(self) -> int:
        return self._region.nbytes

    @property
    def free(self) -> int:
        with self._lock:
            return len(self._free)

    def take(self) -> npt.NDArray[Any] | None:
        """A writable frame-shaped array in a free slot, or None when every slot is in use."""
        with self._lock:
            if not self._free:
                self.misses += 1
                return None
            slot = self._free.popleft()
        flat = self._region.slice(slot * self._slot_bytes, self._slot_bytes)
        weakref.finalize(flat, self._give_back, slot)
        return flat.view(self._dtype).reshape(self._shape)

    def close(self) -> None:
        """No more frames go to these slots from the sender's point of view (see SharedRegion.close). Idempotent."""
        self._region.close()

    def _give_back(self, slot: int) -> None:
        with self._lock:
            self._free.append(slot)
