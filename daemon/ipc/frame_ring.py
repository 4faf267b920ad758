"""The frame ring: pixels in shared memory between a sender and a worker on the same host.

Without it every frame crosses the kernel twice (the sender's socket write, the worker's read) and the worker's
ZeroMQ allocates and first-touches a fresh buffer per frame. With it the sender copies the frame once into a ring
the worker mapped, and the message on the socket carries only the header and the frame's place in the ring.

Conversation (additions to :mod:`daemon.ipc.messages`)::

    worker: creates the ring file, HELLO {..., ring: {path, nbytes, token}}
    sender: attaches (checks below) or ignores it; frames then go as [header, b"", offset] (in the ring) or
            [header, pixels] (inline: no ring, the ring full, or a frame larger than it)
    worker: CREDIT {..., consumed_seq}: every frame below consumed_seq was appended or rejected, its bytes free
    sender: also frees the bytes of frames the worker reports LOST (rejected, or never received)

Design notes:
- The worker owns the ring (its window decides what is in flight); :class:`FrameRing` creates it in ``/dev/shm``
  (``O_EXCL``, mode 0600, a random name), allocates every page at once (a tmpfs that fills up later would kill
  the writer with SIGBUS; now it is an error the worker logs before running without a ring), and unlinks it
  once the first ring frame arrived (the sender holds its mapping) or when the worker closes, so a crash leaves
  at most one stale file per worker.
- The sender writes into a file a peer named: :func:`RingWriter.attach` accepts only a regular file directly in
  the ring folder, named ``acqd-ring-*``, opened without following symlinks, owned by the sender's own user, of
  the announced size, whose header carries the magic and the worker's random token. Anything else is refused
  (logged; frames go inline), so a hostile worker cannot make the daemon write anywhere else.
- Placement is first-fit in arrival order (a ring of variable-size extents, 64-byte aligned): frames are freed in
  order by CREDIT and out of order by LOST; space is reclaimed from the oldest extent on. While frames occupy
  the ring, the sender waits for room rather than send inline (the worker gives credit back as soon as it caught
  up, so room always comes); a frame larger than the empty ring's free run goes inline: the ring is a fast
  path, never a condition for delivery.
- Only the sender's I/O thread places and frees; the mapping is closed only after that thread stopped.
"""

from __future__ import annotations

import contextlib
import mmap
import os
import secrets
import stat
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from daemon.errors import ConfigError, ProtocolError
from daemon.ipc.checks import check_int, check_text

RING_DIR = Path("/dev/shm")
RING_PREFIX = "acqd-ring-"
MAGIC = b"acqd-frame-ring1"
HEADER_BYTES = 4096  # magic + token; frames start page-aligned
ALIGN = 64
TOKEN_BYTES = 16


@dataclass(frozen=True, slots=True)
class RingOffer:
    """What a worker's HELLO announces: the ring file, its data size and the token its header carries."""

    path: str
    nbytes: int
    token: str

    def __post_init__(self) -> None:
        check_text("ring.path", self.path, 1, 4096)
        check_int("ring.nbytes", self.nbytes, ALIGN)
        check_text("ring.token", self.token, TOKEN_BYTES * 2, TOKEN_BYTES * 2)

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "nbytes": self.nbytes, "token": self.token}

    @classmethod
    def parse(cls, body: object) -> RingOffer:
        if not isinstance(body, dict) or set(body) != {"path", "nbytes", "token"}:
            raise ProtocolError(f"ring must be an object with path, nbytes and token. Got {body!r} instead.")
        try:
            return cls(body["path"], body["nbytes"], body["token"])
        except ConfigError as exc:
            raise ProtocolError(f"ring is invalid: {exc}") from exc


def _align(n: int) -> int:
    return (n + ALIGN - 1) // ALIGN * ALIGN


def check_peer_file(fd: int, what: str, size: int, header: bytes) -> None:
    """Shared memory a peer named (a worker's ring, a sender's region): ProtocolError unless ``fd`` is a regular
    file of this process's user, of ``size`` bytes, starting with ``header`` (the magic and the peer's token)."""
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        raise ProtocolError(f"{what} must be a regular file.")
    if info.st_uid != os.geteuid():
        raise ProtocolError(f"{what} must belong to uid {os.geteuid()}. Got {info.st_uid}.")
    if info.st_size != size:
        raise ProtocolError(f"{what} must be {size} bytes. Got {info.st_size} instead.")
    if os.pread(fd, len(header), 0) != header:
        raise ProtocolError(f"{what} does not carry the announced token.")


class FrameRing:
    """The worker's side: the ring file and a read-only mapping of it."""

    def __init__(self, nbytes: int, folder: Path = RING_DIR) -> None:
        check_int("ring_bytes", nbytes, ALIGN)
        self._nbytes = _align(nbytes)
        self._token = secrets.token_hex(TOKEN_BYTES)
        self._path = folder / f"{RING_PREFIX}{os.getpid()}-{secrets.token_hex(8)}"
        fd = os.open(self._path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        try:
            os.posix_fallocate(fd, 0, HEADER_BYTES + self._nbytes)  # now or never: a full tmpfs would be SIGBUS later
            os.pwrite(fd, MAGIC + bytes.fromhex(self._token), 0)
            self._map = mmap.mmap(fd, HEADER_BYTES + self._nbytes, prot=mmap.PROT_READ)
        except OSError:
            os.unlink(self._path)
            raise
        finally:
            os.close(fd)
        self._linked = True

    @property
    def offer(self) -> RingOffer:
        return RingOffer(str(self._path), self._nbytes, self._token)

    @property
    def path(self) -> Path:
        return self._path

    def view(self, offset: int, nbytes: int, dtype: npt.DTypeLike, shape: tuple[int, ...]) -> npt.NDArray[Any]:
        """A read-only view of the ``nbytes`` at ``offset``; ProtocolError if they are not inside the ring."""
        if offset < 0 or offset % ALIGN or offset + nbytes > self._nbytes:
            raise ProtocolError(f"ring offset {offset} (+{nbytes} bytes) is outside the {self._nbytes}-byte ring.")
        count = nbytes // np.dtype(dtype).itemsize
        return np.frombuffer(self._map, dtype=dtype, count=count, offset=HEADER_BYTES + offset).reshape(shape)

    def unlink(self) -> None:
        """Remove the file (the mappings stay valid). Idempotent."""
        if self._linked:
            self._linked = False
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._path)


class RingWriter:
    """The sender's side: places frames in a worker's ring and frees them as the worker reports them consumed."""

    def __init__(self, mapping: mmap.mmap, nbytes: int) -> None:
        self._map = mapping
        self._nbytes = nbytes
        self._extents: deque[list[int]] = deque()  # [seq, start, end, freed]
        self._closed = False

    @classmethod
    def attach(cls, offer: RingOffer, folder: Path = RING_DIR) -> RingWriter:
        """Map the ring ``offer`` names, after the checks of the design notes; ProtocolError says which failed."""
        path = Path(offer.path)
        if path.parent != folder or not path.name.startswith(RING_PREFIX):
            raise ProtocolError(f"ring path must be {folder}/{RING_PREFIX}*. Got {offer.path!r} instead.")
        try:
            fd = os.open(path, os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
        except OSError as exc:
            raise ProtocolError(f"ring {offer.path!r} cannot be opened here: {exc.strerror}.") from exc
        what = f"ring {offer.path!r}"
        try:
            check_peer_file(fd, what, HEADER_BYTES + offer.nbytes, MAGIC + bytes.fromhex(offer.token))
            mapping = mmap.mmap(fd, HEADER_BYTES + offer.nbytes)
        except (OSError, ValueError) as exc:
            raise ProtocolError(f"{what} cannot be mapped: {exc}.") from exc
        finally:
            os.close(fd)
        return cls(mapping, offer.nbytes)

    @property
    def in_use(self) -> int:
        """Frames placed and not yet freed."""
        return sum(1 for extent in self._extents if not extent[3])

    def waits_for_room(self, nbytes: int) -> bool:
        """True when a frame of ``nbytes`` does not fit now but will once frames in the ring are consumed."""
        return bool(self._extents) and not self._closed and self._free_start(_align(nbytes)) is None

    def place(self, seq: int, pixels: npt.NDArray[Any]) -> int | None:
        """Copy ``pixels`` into the ring for frame ``seq``; its offset, or None when it does not fit now."""
        if self._closed:
            return None
        nbytes = pixels.nbytes
        start = self._free_start(_align(nbytes))
        if start is None:
            return None
        self._extents.append([seq, start, start + _align(nbytes), 0])
        target = np.frombuffer(self._map, dtype=np.uint8, count=nbytes, offset=HEADER_BYTES + start)
        np.copyto(target, pixels.reshape(-1).view(np.uint8))
        return start

    def consumed_below(self, seq: int) -> None:
        """The worker is done with every frame below ``seq``."""
        for extent in self._extents:
            if extent[0] >= seq:
                break
            extent[3] = 1
        self._reclaim()

    def freed(self, first_seq: int, count: int) -> None:
        """Frames ``first_seq`` .. ``first_seq + count - 1`` will never be read (reported LOST)."""
        for extent in self._extents:
            if first_seq <= extent[0] < first_seq + count:
                extent[3] = 1
        self._reclaim()

    def close(self) -> None:
        """Forget every extent and unmap (call once nothing places any more). Idempotent."""
        if not self._closed:
            self._closed = True
            self._extents.clear()
            with contextlib.suppress(BufferError):  # a view is still alive somewhere: the mapping goes with it
                self._map.close()

    def _reclaim(self) -> None:
        while self._extents and self._extents[0][3]:
            self._extents.popleft()

    def _free_start(self, size: int) -> int | None:
        if not self._extents:
            return 0 if size <= self._nbytes else None
        oldest, newest = self._extents[0][1], self._extents[-1][2]
        if newest > oldest:  # one run of extents: free space after it, then before it
            if self._nbytes - newest >= size:
                return newest
            return 0 if oldest >= size else None
        return newest if oldest - newest >= size else None
