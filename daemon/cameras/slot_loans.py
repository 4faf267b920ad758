"""Frame slots lent to a GenTL producer, which then writes frames into shared memory itself: no copy in acqd.

Without this, a GenICam camera copies each image out of harvesters' buffer into a frame slot (8 MiB per
2048x2048 Mono16 frame, 1.6 ms of a core measured in session 11) before the buffer goes back to the producer.

Design notes:
- :meth:`SlotLoans.lend` announces every free slot of the camera's :class:`~daemon.ipc.frame_slots.FrameSlots`
  to the running stream (``DSAnnounceBuffer`` with the slot's address, through the producer library harvesters
  loaded: :mod:`daemon.cameras.producer_library`; genicam's ``announce_buffer`` takes only ``bytes``) and queues
  it, before the stream starts (GenTL's own sequence: whether a producer takes buffers announced while it
  acquires is up to the producer). So the producer fills the lent slots first, harvesters' buffers after them.
- A delivered slot (:meth:`delivered`) becomes a frame: :meth:`frame` is a frame-shaped array over the slot, and
  when the last array viewing it is gone (the frame stored or dropped, on whichever thread lets go of it), the slot
  is queued to the producer again. The producer never writes a slot a frame still views: it writes only queued
  buffers.
- :class:`LentBuffer` reads a delivered slot's buffer info (``DSGetBufferInfo``) under the names genicam's buffer
  uses, so the camera reads both kinds alike; a value the producer does not provide is None.
- Stopping: :meth:`retire` first (before the stream stops: a slot released after it is not queued again), then,
  once the stream is stopped and its queues flushed, :meth:`close` revokes every slot (``DSRevokeBuffer``). A slot
  comes back to the frame slots once revoked and viewed by no frame; :meth:`close` after the stream was closed
  (``DSClose`` revokes every buffer) only forgets them. A slot that cannot be revoked while the stream is open
  stays out of the free list for good, and its memory stays mapped: the producer may still hold its address.
- The producer library reference is dropped in :meth:`close`, under the lock every call into it takes, so a
  slot released on another thread never calls into an unloaded library. Idempotent.
"""

from __future__ import annotations

import ctypes
import enum
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from daemon.cameras.producer_library import (
    GC_ERR_SUCCESS,
    SIZE_T_P,
    ProducerLibrary,
    ProducerUnavailable,
    with_library,
)
from daemon.errors import CameraError
from daemon.ipc.frame_slots import FrameSlots
from daemon.log import get_logger

_log = get_logger("daemon.cameras.slot_loans")
GC_ERR_NOT_AVAILABLE = -1014
GC_ERR_NOT_IMPLEMENTED = -1003
ACQ_QUEUE_ALL_DISCARD = 4  # DSFlushQueue: every buffer of the input pool and the output queue unqueued

# BUFFER_INFO_CMD values (GenTL standard) and how each is read
_U64, _SIZE, _BOOL = ctypes.c_uint64, ctypes.c_size_t, ctypes.c_bool
_INFO: dict[str, tuple[int, Any]] = {
    "is_incomplete": (7, _BOOL),
    "size_filled": (9, _SIZE),
    "width": (10, _SIZE),
    "height": (11, _SIZE),
    "padding_x": (14, _SIZE),
    "frame_id": (16, _U64),
    "image_offset": (18, _SIZE),
    "pixel_format": (20, _U64),
    "timestamp_ns": (28, _U64),
}


_NEVER_UNMAPPED: list[npt.NDArray[np.uint8]] = []  # slots a producer refused to give back: mapped for good


class LoanUnavailable(Exception):
    """Frame slots cannot be lent to this stream (the reason is the message)."""


class _Where(enum.Enum):
    QUEUED = "queued"  # announced and queued (or being filled, or filled and awaiting delivery)
    OUT = "out"  # delivered: a frame views it, or the camera is copying it out
    REVOKED = "revoked"  # no longer announced; back in the frame slots once no frame views it


class LentBuffer:
    """A delivered lent slot, read like genicam's buffer (``width``, ``frame_id``, ``is_complete()``...)."""

    __slots__ = ("_loans", "handle", "slot")

    def __init__(self, loans: SlotLoans, handle: int, slot: int) -> None:
        self._loans = loans
        self.handle = handle
        self.slot = slot

    def __getattr__(self, name: str) -> Any:
        if name not in _INFO:
            raise AttributeError(name)
        return self._loans.info(self.handle, name)

    @property
    def raw_buffer(self) -> npt.NDArray[np.uint8]:
        return self._loans.raw(self.slot)

    def is_complete(self) -> bool:
        return not self._loans.info(self.handle, "is_incomplete")


class SlotLoans:
    """Frame slots announced to one running data stream (see the module docstring)."""

    def __init__(self, library: ProducerLibrary, stream: int, slots: FrameSlots, label: str) -> None:
        void_p = ctypes.c_void_p
        self._library = library
        self._stream = void_p(stream)
        self._slots = slots
        self._label = label
        self._announce = library.function("DSAnnounceBuffer", void_p, void_p, ctypes.c_size_t, void_p, void_p)
        self._queue = library.function("DSQueueBuffer", void_p, void_p)
        self._revoke = library.function("DSRevokeBuffer", void_p, void_p, void_p, void_p)
        self._flush = library.function("DSFlushQueue", void_p, ctypes.c_int32)
        self._get_info = library.function(
            "DSGetBufferInfo", void_p, void_p, ctypes.c_int32, ctypes.POINTER(ctypes.c_int32), void_p, SIZE_T_P
        )
        self._lock = threading.RLock()  # every call into the library; re-entrant: a release may run inside a GC
        self._handles: dict[int, int] = {}  # GenTL buffer handle -> slot
        self._slot_handles: dict[int, int] = {}  # slot -> GenTL buffer handle
        self._raw: dict[int, npt.NDArray[np.uint8]] = {}  # slot -> its bytes (keeps the memory mapped)
        self._where: dict[int, _Where] = {}
        self._viewed: set[int] = set()  # slots a frame views
        self._queued = 0
        self._retired = False
        self._closed = False

    @classmethod
    def lend(cls, library_path: Path, stream: int, slots: FrameSlots, alignment: int, label: str) -> SlotLoans:
        """Announce and queue every free slot of ``slots`` to data stream ``stream`` of the producer loaded from
        ``library_path``. LoanUnavailable (nothing lent) when the library cannot be reached, a slot's address is
        not a multiple of the stream's ``alignment``, or the producer refuses a slot."""
        if not stream:
            raise LoanUnavailable("the data stream has no handle")
        try:
            loans = with_library(library_path, lambda library: cls(library, stream, slots, label))
        except ProducerUnavailable as error:
            raise LoanUnavailable(str(error)) from error
        try:
            loans._lend_free(max(alignment, 1))
        except LoanUnavailable:
            loans.retire()
            loans.close(stream_closed=False)
            raise
        return loans

    @property
    def handles(self) -> Iterator[int]:
        """The GenTL handles of the lent slots."""
        return iter(list(self._handles))

    @property
    def count(self) -> int:
        return len(self._handles)

    @property
    def queued(self) -> int:
        """Lent slots the producer may fill now (queued, or filled and not yet delivered)."""
        return self._queued

    def buffer(self, handle: int) -> LentBuffer:
        return LentBuffer(self, handle, self._handles[handle])

    def delivered(self, buffer: LentBuffer) -> None:
        """The producer delivered ``buffer``: it is the camera's until :meth:`frame`'s array goes or
        :meth:`give_back`."""
        with self._lock:
            self._where[buffer.slot] = _Where.OUT
            self._queued -= 1

    def frame(self, buffer: LentBuffer) -> npt.NDArray[Any]:
        """A frame-shaped array over the delivered ``buffer``; the slot is queued again once it is gone."""
        with self._lock:
            self._viewed.add(buffer.slot)
        return self._slots.view(buffer.slot, self._released)

    def give_back(self, buffer: LentBuffer) -> None:
        """The camera is done with the delivered ``buffer`` without a frame viewing it (it copied it out)."""
        self._released(buffer.slot)

    def raw(self, slot: int) -> npt.NDArray[np.uint8]:
        return self._raw[slot]

    def info(self, handle: int, name: str) -> Any:
        """Buffer info ``name`` of lent buffer ``handle``: None when the producer does not provide it;
        CameraError on any other failure."""
        command, kind = _INFO[name]
        value, size, type_ = kind(0), ctypes.c_size_t(ctypes.sizeof(kind)), ctypes.c_int32(0)
        with self._lock:
            if self._closed:
                raise CameraError(f"{self._label}: the frame slots lent to the producer were taken back.")
            code = self._get_info(
                self._stream,
                ctypes.c_void_p(handle),
                command,
                ctypes.byref(type_),
                ctypes.byref(value),
                ctypes.byref(size),
            )
        if code in (GC_ERR_NOT_AVAILABLE, GC_ERR_NOT_IMPLEMENTED):
            return None
        if code != GC_ERR_SUCCESS:
            raise CameraError(f"{self._label}: reading a frame's {name} failed: {self._library.describe(code)}.")
        return bool(value.value) if kind is _BOOL else int(value.value)

    def retire(self) -> None:
        """No slot is queued again from now on (call before the stream stops). Idempotent."""
        with self._lock:
            self._retired = True

    def close(self, stream_closed: bool, flush: bool = False) -> None:
        """Revoke every slot (the stream stopped and flushed; ``stream_closed``: ``DSClose`` already revoked
        them; ``flush``: the stream never started, so flush its queues here first) and drop the library
        reference. Idempotent."""
        with self._lock:
            self._retired = True
            if self._closed:
                return
            self._closed = True
            if flush and not stream_closed:
                code = self._flush(self._stream, ACQ_QUEUE_ALL_DISCARD)
                if code != GC_ERR_SUCCESS:
                    _log.warning("camera_slot_flush_failed", error=self._library.describe(code))
            kept = 0
            for slot in list(self._where):
                handle = self._slot_handles.get(slot)
                if handle is None or stream_closed or self._revoke_one(handle):
                    self._where[slot] = _Where.REVOKED
                    if slot not in self._viewed:
                        self._slots.give_back(slot)
                else:
                    kept += 1
                    _NEVER_UNMAPPED.append(self._raw[slot])  # the producer may still write there
            self._library.close()
        if kept:
            _log.warning("camera_slots_kept", slots=kept, reason="the producer refused to revoke them")

    def _lend_free(self, alignment: int) -> None:
        """Announce every free slot, then queue them (a slot the producer will not queue stays announced, out of
        use, until :meth:`close`). LoanUnavailable, with every slot announced so far revoked, when a slot is
        misaligned or refused."""
        while (free := self._slots.lend()) is not None:
            slot, raw = free
            self._raw[slot] = raw
            self._where[slot] = _Where.OUT
            if raw.ctypes.data % alignment:
                raise LoanUnavailable(f"frame slots are not aligned to the {alignment} bytes the stream needs")
            handle = ctypes.c_void_p(0)
            with self._lock:
                code = self._announce(
                    self._stream, ctypes.c_void_p(raw.ctypes.data), raw.nbytes, None, ctypes.byref(handle)
                )
                if code != GC_ERR_SUCCESS:
                    raise LoanUnavailable(f"the producer refused a frame slot: {self._library.describe(code)}")
            self._handles[handle.value or 0] = slot
            self._slot_handles[slot] = handle.value or 0
        for slot in list(self._slot_handles):
            self._released(slot)

    def _released(self, slot: int) -> None:
        """No frame views ``slot`` any more: queue it again, or hand it back to the frame slots once revoked."""
        with self._lock:
            self._viewed.discard(slot)
            where = self._where.get(slot)
            if where is _Where.REVOKED:
                self._slots.give_back(slot)
            if where is not _Where.OUT or self._retired:
                return  # retired: close() revokes it and gives it back
            code = self._queue(self._stream, ctypes.c_void_p(self._slot_handles[slot]))
            if code == GC_ERR_SUCCESS:
                self._where[slot] = _Where.QUEUED
                self._queued += 1
            else:
                _log.warning("camera_slot_requeue_failed", slot=slot, error=self._library.describe(code))

    def _revoke_one(self, handle: int) -> bool:
        code = int(self._revoke(self._stream, ctypes.c_void_p(handle), None, None))
        if code != GC_ERR_SUCCESS:
            _log.warning("camera_slot_revoke_failed", error=self._library.describe(code))
        return code == GC_ERR_SUCCESS
