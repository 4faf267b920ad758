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
- A camera may also lend slots to its driver (:meth:`FrameSlots.lend`), which then writes frames into them
  itself: such a slot is out of the free list until the camera gives it back (:meth:`give_back`), and each frame
  delivered in it is viewed with :meth:`view`, whose release callback is the camera's (it hands the slot to the
  driver again, or gives it back).
- Thread-safe: a camera thread takes, whichever thread drops the last view gives back.
"""

from __future__ import annotations

import math
import threading
import weakref
from collections import deque
from collections.abc import Callable
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

    @property
    def slot_bytes(self) -> int:
        return self._slot_bytes

    def take(self) -> npt.NDArray[Any] | None:
        """A writable frame-shaped array in a free slot, or None when every slot is in use."""
        with self._lock:
            if not self._free:
                self.misses += 1
                return None
            slot = self._free.popleft()
        return self.view(slot, self.give_back)

    def lend(self) -> tuple[int, npt.NDArray[np.uint8]] | None:
        """A free slot taken out to be lent (its number and its bytes, which keep the memory mapped for as long as
        they are held), or None when every slot is in use. It stays out until :meth:`give_back`."""
        with self._lock:
            if not self._free:
                return None
            slot = self._free.popleft()
        return slot, self._region.slice(slot * self._slot_bytes, self._slot_bytes)

    def view(self, slot: int, on_release: Callable[[int], None]) -> npt.NDArray[Any]:
        """A writable frame-shaped array over slot ``slot``, which the caller holds (taken or lent):
        ``on_release(slot)`` runs once the last array viewing it is gone, on whichever thread drops it."""
        flat = self._region.slice(slot * self._slot_bytes, self._slot_bytes)
        weakref.finalize(flat, on_release, slot)
        return flat.view(self._dtype).reshape(self._shape)

    def give_back(self, slot: int) -> None:
        """Slot ``slot`` is free again."""
        with self._lock:
            self._free.append(slot)

    def close(self) -> None:
        """No more frames go to these slots from the sender's point of view (see SharedRegion.close). Idempotent."""
        self._region.close()
