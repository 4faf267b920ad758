"""Shared regions: frames that already live in shared memory go to a worker on this host by reference, uncopied.

The frame ring (:mod:`daemon.ipc.frame_ring`) costs one copy per frame in the sender. A camera that keeps frames of
its own (the simulated camera's phase cache) can keep them in a :class:`SharedRegion` instead: a sealed ``memfd``
the worker maps read-only, so such a frame goes as its header and its place in the region, with no copy at all.

Conversation (additions to :mod:`daemon.ipc.messages`; only with a worker whose ring the sender attached, which
proves they share a host and a user)::

    sender: REGION {region_id, pid, fd, nbytes, token}   the first time it sends a frame of that region; until the
                                                          reply, the region's frames go through the ring as before
    worker: REGION_REPLY {region_id, mapped, reason}     mapped, or why not (its frames then keep using the ring)
    sender: frames of a mapped region as [header, b"", region_id (8 bytes) + offset (8 bytes)]
    worker: CREDIT consumed_seq, as for the ring: the sender keeps the frame alive until the worker has
            consumed it (or reported it LOST)

Design notes:
- The owner creates the region (:meth:`SharedRegion.create`): ``memfd_create`` (no name in any folder, so a crash
  leaves nothing behind), a header page with the magic and a random token, then the data, page-aligned; the size
  is sealed (``F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL``), so no one can truncate it under a mapping (SIGBUS).
  Pages are taken as they are first written, like an anonymous mapping.
- The worker opens ``/proc/<pid>/fd/<fd>`` read-only (:class:`MappedRegions`) and maps it only if it is a regular
  file owned by the worker's own user, of the announced size, sealed against shrinking, and its header carries
  the magic and the announced token: a descriptor number the sender reused for something else is refused. It never
  writes to it. Any failure is a reason in REGION_REPLY, never a lost frame.
- The sender finds a frame's region by address (:func:`locate`): regions register while open (weakly: a region
  its owner dropped without closing it is gone from the registry with it). Closing a region
  (its owner is done with it) unregisters it and closes its descriptor at once, so frames still queued go through
  the ring; a worker told of it before then but too late to open it is refused by the token check (the number may
  name another file by then) and keeps using the ring. Frames already lent stay readable: the worker has its own
  mapping, and ours lives as long as any frame views it.
- Only for C-contiguous pixels lying wholly inside a region's data.
"""

from __future__ import annotations

import contextlib
import fcntl
import math
import mmap
import os
import secrets
import struct
import threading
import weakref
from typing import Any

import numpy as np
import numpy.typing as npt

from daemon.errors import ProtocolError
from daemon.ipc.checks import check_int
from daemon.ipc.frame_ring import check_peer_file
from daemon.ipc.messages import MAX_REGION_ID, Region
from daemon.ipc.messages import REGION_TOKEN_BYTES as TOKEN_BYTES

MAGIC = b"acqd-frame-rgn-1"
HEADER_BYTES = 4096  # magic + token; the data starts page-aligned
REGION_REF = struct.Struct("<QQ")  # region id, offset: the third part of a frame sent by reference
_SEALS = getattr(fcntl, "F_SEAL_SHRINK", 0) | getattr(fcntl, "F_SEAL_GROW", 0) | getattr(fcntl, "F_SEAL_SEAL", 0)

_lock = threading.Lock()
_open: weakref.WeakValueDictionary[int, SharedRegion] = weakref.WeakValueDictionary()  # open regions, by id


def available() -> bool:
    """Whether this platform has sealed ``memfd`` files (Linux)."""
    return hasattr(os, "memfd_create") and hasattr(fcntl, "F_ADD_SEALS") and bool(_SEALS)


class SharedRegion:
    """Memory its owner fills with frames, which a worker on this host can map (see the design notes)."""

    def __init__(self, fd: int, nbytes: int, token: str) -> None:
        self._fd = fd
        self._nbytes = nbytes
        self._token = token
        self._map = mmap.mmap(fd, HEADER_BYTES + nbytes)
        self._start = int(self.slice(0, nbytes).ctypes.data)
        self.region_id = secrets.randbelow(MAX_REGION_ID) + 1
        self._closer = weakref.finalize(self, os.close, fd)  # at close, or when the last holder lets go
        with _lock:
            _open[self.region_id] = self

    @classmethod
    def create(cls, nbytes: int, name: str = "acqd-frames") -> SharedRegion:
        """A region of ``nbytes`` of data; OSError where sealed memfd files are not available or memory is short."""
        if not available():
            raise OSError("sealed memfd files are not available on this platform")
        check_int("nbytes", nbytes, 1)
        fd = os.memfd_create(name, os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
        try:
            token = secrets.token_hex(TOKEN_BYTES)
            os.ftruncate(fd, HEADER_BYTES + nbytes)
            os.pwrite(fd, MAGIC + bytes.fromhex(token), 0)
            fcntl.fcntl(fd, fcntl.F_ADD_SEALS, _SEALS)
            return cls(fd, nbytes, token)
        except BaseException:
            os.close(fd)
            raise

    @property
    def nbytes(self) -> int:
        return self._nbytes

    @property
    def offer(self) -> Region:
        """The REGION message that lets a worker map it."""
        return Region(self.region_id, os.getpid(), self._fd, self._nbytes, self._token)

    def array(self, dtype: npt.DTypeLike, shape: tuple[int, ...]) -> npt.NDArray[Any]:
        """The data as a writable array of ``shape`` (which must fit), for the owner to fill."""
        return self.slice(0, math.prod(shape) * np.dtype(dtype).itemsize).view(dtype).reshape(shape)

    def slice(self, offset: int, nbytes: int) -> npt.NDArray[np.uint8]:
        """``nbytes`` of the data from ``offset`` as a writable array of its own (views of it point back to it)."""
        if offset < 0 or nbytes < 0 or offset + nbytes > self._nbytes:
            raise ValueError(f"bytes {offset}..{offset + nbytes} are outside the {self._nbytes}-byte region.")
        return np.frombuffer(self._map, dtype=np.uint8, count=nbytes, offset=HEADER_BYTES + offset)

    def offset_of(self, pixels: npt.NDArray[Any]) -> int | None:
        """Where ``pixels`` start in the data, or None unless they are C-contiguous and wholly inside it."""
        if not pixels.flags.c_contiguous:
            return None
        offset = int(pixels.__array_interface__["data"][0]) - self._start
        return offset if offset >= 0 and offset + pixels.nbytes <= self._nbytes else None

    def close(self) -> None:
        """The owner is done: frames are no longer looked up here and the descriptor is closed (a worker that has
        not mapped the region yet is refused; its frames go through the ring). Idempotent. The memory goes with the
        last frame that views it."""
        with _lock:
            _open.pop(self.region_id, None)
        self._closer()


def locate(pixels: npt.NDArray[Any]) -> tuple[SharedRegion, int] | None:
    """The open region holding ``pixels`` and their offset in it, or None."""
    with _lock:
        regions = list(_open.values())
    for region in regions:
        offset = region.offset_of(pixels)
        if offset is not None:
            return region, offset
    return None


class MappedRegions:
    """The worker's side: the regions it mapped, read-only, by id."""

    def __init__(self) -> None:
        self._maps: dict[int, tuple[mmap.mmap, int]] = {}

    def __len__(self) -> int:
        return len(self._maps)

    def attach(self, offer: Region) -> None:
        """Map the region ``offer`` names, after the checks of the design notes; ProtocolError says which failed."""
        if offer.region_id in self._maps:
            return
        what, where = f"region {offer.region_id}", f"/proc/{offer.pid}/fd/{offer.fd}"
        try:
            fd = os.open(where, os.O_RDONLY | os.O_CLOEXEC)
        except OSError as exc:
            raise ProtocolError(f"{what} cannot be opened at {where}: {exc.strerror}.") from exc
        try:
            check_peer_file(fd, what, HEADER_BYTES + offer.nbytes, MAGIC + bytes.fromhex(offer.token))
            if not fcntl.fcntl(fd, fcntl.F_GET_SEALS) & fcntl.F_SEAL_SHRINK:
                raise ProtocolError(f"{what} is not sealed against shrinking.")
            mapping = mmap.mmap(fd, HEADER_BYTES + offer.nbytes, prot=mmap.PROT_READ)
        except (OSError, ValueError) as exc:
            raise ProtocolError(f"{what} cannot be mapped: {exc}.") from exc
        finally:
            os.close(fd)
        self._maps[offer.region_id] = (mapping, offer.nbytes)

    def view(
        self, region_id: int, offset: int, nbytes: int, dtype: npt.DTypeLike, shape: tuple[int, ...]
    ) -> npt.NDArray[Any]:
        """A read-only view of ``nbytes`` at ``offset``; ProtocolError for an unknown region or bytes outside it."""
        found = self._maps.get(region_id)
        if found is None:
            raise ProtocolError(f"a frame names region {region_id}, which this worker has not mapped.")
        mapping, size = found
        if offset < 0 or offset + nbytes > size:
            raise ProtocolError(f"region offset {offset} (+{nbytes} bytes) is outside the {size}-byte region.")
        count = nbytes // np.dtype(dtype).itemsize
        return np.frombuffer(mapping, dtype=dtype, count=count, offset=HEADER_BYTES + offset).reshape(shape)

    def close(self) -> None:
        """Forget every region (a mapping still viewed somewhere goes with its last view). Idempotent."""
        for mapping, _ in self._maps.values():
            with contextlib.suppress(BufferError):
                mapping.close()
        self._maps.clear()
