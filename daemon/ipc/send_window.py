"""What a frame sender may send now: the worker's credit (frames and bytes) and the worker's frame ring.

Design notes:
- Credit: a frame goes out while the worker granted at least one frame and a positive byte balance; the byte
  balance may go negative by one frame, so frames larger than the window still flow, one at a time. The worker
  grants credit with CREDIT for frames it consumed; frames it reports LOST give theirs back here (a frame lost in
  transit never reached the worker, so only the sender knows its size). Losing the worker zeroes it.
- Frame ring: a worker on this host may offer a ring in shared memory (:mod:`daemon.ipc.frame_ring`); a frame is
  then copied into it once and only its offset goes on the socket. A frame that will fit once the worker consumed
  more waits for that; one that can never fit goes inline.
- Shared regions (:mod:`daemon.ipc.shared_region`), only with a ring attached (same host, same user): a frame
  whose pixels lie in a region the worker mapped goes by reference, uncopied, and the window holds its pixels until
  the worker consumed it. The first frame of a region queues a REGION announcement instead (the sender sends it
  before that frame) and goes through the ring, as do the region's frames until the worker's REGION_REPLY (and
  for good when the worker could not map it: a region is announced once).
- Threads: the sender's lock guards the credit (its callers hold it); the ring is used by the sender's I/O thread
  only, and closed once that thread stopped.
"""

from __future__ import annotations

from collections import deque
from typing import Any

import numpy as np

from daemon.ipc import shared_region
from daemon.ipc.frame_ring import RingOffer, RingWriter
from daemon.ipc.messages import Region, RegionReply
from daemon.ipc.shared_region import REGION_REF, SharedRegion


class SendWindow:
    def __init__(self) -> None:
        self.frames = 0  # credit: frames the worker will take
        self.nbytes = 0  # credit: bytes the worker will take (may be negative by one frame)
        self.ring_frames = 0  # of the frames sent, those through the ring (the rest went inline)
        self.region_frames = 0  # of the frames sent, those by reference to a shared region
        self._ring: RingWriter | None = None
        self._mapped: set[int] = set()  # regions the worker mapped
        self._refused: set[int] = set()  # regions the worker could not map: never announced again
        self._announced: dict[int, SharedRegion] = {}  # held until the worker replied
        self._announcements: list[Region] = []  # to send before the next frame
        self._lent: deque[tuple[int, np.ndarray[Any, Any]]] = deque()  # (seq, pixels) the worker may still read

    def add(self, frames: int, nbytes: int) -> None:
        """Credit granted (CREDIT) or given back (frames reported LOST)."""
        self.frames += frames
        self.nbytes += nbytes

    def clear(self) -> None:
        """The worker is lost: nothing more may be sent."""
        self.frames = self.nbytes = 0

    def allows(self, head_nbytes: int | None) -> bool:
        """Whether the frame at the head of the queue (``head_nbytes``; None: none) may go out now."""
        if self.frames < 1 or self.nbytes <= 0:
            return False
        return self._ring is None or head_nbytes is None or not self._ring.waits_for_room(head_nbytes)

    def spend(self, nbytes: int) -> None:
        self.frames -= 1
        self.nbytes -= nbytes

    def attach_ring(self, offer: dict[str, Any]) -> None:
        """Use the worker's ring; ProtocolError when it is not on this host or fails the checks."""
        self._ring = RingWriter.attach(RingOffer.parse(offer))

    def payload(self, seq: int, pixels: np.ndarray[Any, Any]) -> list[Any]:
        """The message parts after the header for frame ``seq``: its place in a shared region, its ring offset, or
        the pixels inline (call :meth:`take_announcements` after it and send those first)."""
        if self._ring is not None:
            found = shared_region.locate(pixels)
            if found is not None:
                region, place = found
                if region.region_id in self._mapped:
                    self._lent.append((seq, pixels))
                    self.region_frames += 1
                    return [b"", REGION_REF.pack(region.region_id, place)]
                if region.region_id not in self._announced and region.region_id not in self._refused:
                    self._announced[region.region_id] = region
                    self._announcements.append(region.offer)
        offset = None if self._ring is None else self._ring.place(seq, pixels)
        if offset is None:
            return [pixels]
        self.ring_frames += 1
        return [b"", offset.to_bytes(8, "little")]

    def take_announcements(self) -> list[Region]:
        """The REGION messages to send now (before the frame just given to :meth:`payload`)."""
        announcements, self._announcements = self._announcements, []
        return announcements

    def region_replied(self, reply: RegionReply) -> bool:
        """The worker's answer to REGION: later frames of a mapped region go by reference. False if unasked."""
        if self._announced.pop(reply.region_id, None) is None:
            return False
        (self._mapped if reply.mapped else self._refused).add(reply.region_id)
        return True

    def consumed_below(self, seq: int | None) -> None:
        """The worker consumed every frame below ``seq`` (CREDIT): their ring space is free."""
        if seq is None:
            return
        if self._ring is not None:
            self._ring.consumed_below(seq)
        while self._lent and self._lent[0][0] < seq:
            self._lent.popleft()

    def freed(self, first_seq: int, count: int) -> None:
        """Frames the worker reported LOST: their ring space is free."""
        if self._ring is not None:
            self._ring.freed(first_seq, count)
        if self._lent:
            self._lent = deque(item for item in self._lent if not first_seq <= item[0] < first_seq + count)

    @property
    def lent(self) -> int:
        """Frames sent by reference that the worker may still read."""
        return len(self._lent)

    def close(self) -> None:
        if self._ring is not None:
            self._ring.close()
        self._lent.clear()
        self._announced.clear()
