"""A data stream's new-buffer event, waited on through the producer's own ``EventGetData`` without the GIL.

Design notes:
- Why: genicam's event wait (``EventManagerNewBuffer.update_event_data``) holds the GIL for as long as it waits, so
  :class:`~daemon.cameras.genicam.GenicamCamera` used to wait in 2 ms slices, yielding the GIL between them. A
  camera waiting for its next frame still held the GIL most of the time: measured with the fake producer (512x512
  at 20 frames/s, one pure-Python thread beside the camera thread), the other thread ran 14,200-15,300 loops/s
  against 21,200-21,500 with this wait, and the waiting camera thread used 2.1-2.4% of a core against 0.6-0.7%.
  Every other thread of the run process pays that: a second camera, the frame sender, the control server.
- How: through the producer library harvesters loaded (:mod:`daemon.cameras.producer_library`); calls through
  ctypes release the GIL. ``EventGetData`` fills ``EVENT_NEW_BUFFER_DATA`` (the buffer handle, then the user
  pointer); the handle is looked up among the buffers announced for this stream: harvesters' own, whose info,
  re-queueing and stopping stay with genicam, and the frame slots the camera lent (:meth:`add_buffers`,
  :mod:`daemon.cameras.slot_loans`).
- :meth:`NewBufferEvent.attach` raises :class:`EventWaitUnavailable` (with the reason) when the producer's library
  cannot be matched or lacks the entry points; the camera then keeps the sliced wait, and says so in the log.
- A failed wait raises :class:`~daemon.errors.CameraError` with the GenTL error code and the producer's own text
  (``GCGetLastError``): the camera treats it as a lost device, as it treats a genicam exception.
- Closing while another thread waits: :meth:`close` aborts the wait (``EventKill``: the waiting call returns
  ``GC_ERR_ABORT``, and :meth:`wait` returns ``None``), then waits for the call to return before dropping its
  reference to the library, so the producer never frees the event under a waiting call. Idempotent.
"""

from __future__ import annotations

import ctypes
import math
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from daemon.cameras.producer_library import (
    GC_ERR_ABORT,
    GC_ERR_SUCCESS,
    GC_ERR_TIMEOUT,
    SIZE_T_P,
    ProducerLibrary,
    ProducerUnavailable,
    with_library,
)
from daemon.errors import CameraError

EVENT_SIZE_MAX = 3  # EventGetInfo: the largest event data the event delivers (SIZET)
CLOSE_WAIT_S = 5.0  # close waits this long for an aborted wait to return before giving up the library reference
_NEW_BUFFER_DATA_BYTES = ctypes.sizeof(ctypes.c_void_p) * 2  # EVENT_NEW_BUFFER_DATA: BufferHandle, pUserPointer
_DATA_MAX_BYTES = 4096  # a producer claiming larger new-buffer event data gets this (and BUFFER_TOO_SMALL if true)


class EventWaitUnavailable(Exception):
    """This producer's new-buffer event cannot be waited on here without the GIL (the reason is the message)."""


class NewBufferEvent:
    """Waits for a stream's next delivered buffer in the producer's ``EventGetData``, with the GIL released."""

    def __init__(self, library: ProducerLibrary, event_handle: int, buffers: Mapping[int, Any], label: str) -> None:
        """Takes over ``library``, a reference of its own to the loaded producer (:meth:`attach` opens one), and
        drops it in :meth:`close`. ProducerUnavailable when the library lacks an entry point."""
        self._library = library
        self._handle = ctypes.c_void_p(event_handle)
        self._buffers = dict(buffers)
        self._label = label
        void_p = ctypes.c_void_p
        self._get_data = library.function("EventGetData", void_p, void_p, SIZE_T_P, ctypes.c_uint64)
        self._kill = library.function("EventKill", void_p)
        self._data = ctypes.create_string_buffer(min(max(_NEW_BUFFER_DATA_BYTES, self._size_max()), _DATA_MAX_BYTES))
        self._in_call = threading.Lock()
        self._closed = False

    @classmethod
    def attach(cls, library_path: Path, event_handle: int, buffers: Mapping[int, Any], label: str) -> NewBufferEvent:
        """The event ``event_handle`` of the producer loaded from ``library_path``, whose announced buffers are
        ``buffers`` (by GenTL buffer handle; more with :meth:`add_buffers`). EventWaitUnavailable when the library
        is not loaded in this process under that path or lacks an entry point."""
        if not event_handle:
            raise EventWaitUnavailable("the new-buffer event has no handle")
        try:
            return with_library(library_path, lambda library: cls(library, event_handle, buffers, label))
        except ProducerUnavailable as error:
            raise EventWaitUnavailable(str(error)) from error

    def add_buffers(self, buffers: Mapping[int, Any]) -> None:
        """Buffers announced after :meth:`attach` (by GenTL buffer handle); call it from the waiting thread."""
        self._buffers.update(buffers)

    def wait(self, timeout_s: float) -> Any | None:
        """The next delivered buffer (genicam's object for it), or None after ``timeout_s`` (at least 1 ms) or once
        :meth:`close` has aborted the wait. CameraError when the producer reports any other failure."""
        timeout_ms = max(1, math.ceil(timeout_s * 1000))
        with self._in_call:
            if self._closed:
                return None
            size = ctypes.c_size_t(len(self._data))
            code = self._get_data(self._handle, self._data, ctypes.byref(size), timeout_ms)
            if code == GC_ERR_SUCCESS:
                handle = ctypes.c_void_p.from_buffer(self._data).value or 0
                buffer = self._buffers.get(handle)
                if buffer is None:
                    raise CameraError(f"{self._label}: the producer delivered a buffer never announced ({handle:#x}).")
                return buffer
            if code == GC_ERR_TIMEOUT or (code == GC_ERR_ABORT and self._closed):
                return None
            raise CameraError(f"{self._label}: waiting for a frame failed: {self._library.describe(code)}.")

    def close(self) -> None:
        """Abort a wait in progress, wait for it to return, drop the library reference. Idempotent."""
        if self._closed:
            return
        self._closed = True
        if not self._in_call.acquire(blocking=False):
            self._kill(self._handle)  # the waiting call returns GC_ERR_ABORT
            if not self._in_call.acquire(timeout=CLOSE_WAIT_S):
                return  # the call never returned: keep the library loaded rather than pull it from under it
        try:
            self._library.close()
        finally:
            self._in_call.release()

    def _size_max(self) -> int:
        """The event's largest data (``EventGetInfo(EVENT_SIZE_MAX)``), or 0 when the producer does not say."""
        get_info = self._library.function(
            "EventGetInfo", ctypes.c_void_p, ctypes.c_int32, ctypes.c_void_p, ctypes.c_void_p, SIZE_T_P
        )
        value, size, kind = ctypes.c_size_t(0), ctypes.c_size_t(ctypes.sizeof(ctypes.c_size_t)), ctypes.c_int32(0)
        code = get_info(self._handle, EVENT_SIZE_MAX, ctypes.byref(kind), ctypes.byref(value), ctypes.byref(size))
        return int(value.value) if code == GC_ERR_SUCCESS else 0
