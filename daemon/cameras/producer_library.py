"""A GenTL producer library that harvesters already loaded, reached again through ctypes.

Design notes:
- The library is opened again by its path with ``RTLD_NOLOAD``: that hands back the instance already loaded (its
  handles are the ones genicam holds) or fails; it never loads a second copy, whose handles would mean nothing.
- Each :class:`ProducerLibrary` is one reference of our own to the library, dropped by :meth:`close`
  (idempotent), so the producer stays mapped while anything here may still call it, and is unmapped when
  harvesters and we are all done with it.
- Calls through ctypes release the GIL: waiting or copying in the producer holds up no other Python thread.
"""

from __future__ import annotations

import _ctypes
import ctypes
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

GC_ERR_SUCCESS = 0
GC_ERR_TIMEOUT = -1011
GC_ERR_ABORT = -1012
SIZE_T_P = ctypes.POINTER(ctypes.c_size_t)
_ERROR_TEXT_BYTES = 1024
T = TypeVar("T")


class ProducerUnavailable(Exception):
    """The producer's library cannot be reached here (the reason is the message)."""


class ProducerLibrary:
    """One reference of our own to a producer library loaded in this process (see the module docstring)."""

    def __init__(self, path: Path) -> None:
        """ProducerUnavailable when no library is loaded in this process under ``path``."""
        try:
            self._library = ctypes.CDLL(str(path), mode=os.RTLD_NOLOAD | os.RTLD_LOCAL)
        except OSError as error:
            raise ProducerUnavailable(f"{path} is not loaded in this process: {error}") from error
        self._path = path
        self._lock = threading.Lock()
        self._closed = False
        try:
            int32_p = ctypes.POINTER(ctypes.c_int32)
            self._last_error = self.function("GCGetLastError", int32_p, ctypes.c_char_p, SIZE_T_P)
        except ProducerUnavailable:
            self.close()
            raise

    @property
    def path(self) -> Path:
        return self._path

    def function(self, name: str, *argtypes: Any) -> Any:
        """The library's C function ``name`` returning a GC_ERROR (int32); ProducerUnavailable when it has none."""
        try:
            function = getattr(self._library, name)
        except AttributeError as error:
            raise ProducerUnavailable(f"{self._path} lacks the GenTL entry point {name}") from error
        function.argtypes = list(argtypes)
        function.restype = ctypes.c_int32
        return function

    def describe(self, code: int) -> str:
        """GenTL error ``code`` with the producer's text for it (the calling thread's last error)."""
        text = ctypes.create_string_buffer(_ERROR_TEXT_BYTES)
        size, last = ctypes.c_size_t(_ERROR_TEXT_BYTES), ctypes.c_int32(0)
        try:
            if self._last_error(ctypes.byref(last), text, ctypes.byref(size)) == GC_ERR_SUCCESS and text.value:
                return f"GenTL error {code} ({text.value.decode(errors='replace')})"
        except OSError:
            pass
        return f"GenTL error {code}"

    def close(self) -> None:
        """Drop this reference to the library. Idempotent; call it only once nothing calls the library's
        functions through this object any more."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        _ctypes.dlclose(self._library._handle)


def with_library(path: Path, build: Callable[[ProducerLibrary], T]) -> T:
    """``build(library)`` over a new reference to the producer loaded from ``path``, which what it builds takes
    over; the reference is dropped again when either raises ProducerUnavailable (re-raised)."""
    library = ProducerLibrary(path)
    try:
        return build(library)
    except ProducerUnavailable:
        library.close()
        raise
