"""Frame slots: frame-sized buffers in a shared region that come back by themselves when the last view is gone."""

from __future__ import annotations

import gc
import resource

import numpy as np
import pytest

from daemon.ipc import shared_region
from daemon.ipc.frame_slots import FrameSlots

pytestmark = pytest.mark.skipif(not shared_region.available(), reason="sealed memfd files are Linux-only")

SHAPE = (32, 48)


def test_slots_are_distinct_shared_and_come_back_when_the_last_view_dies() -> None:
    slots = FrameSlots.create(3, SHAPE, np.uint16)
    assert slots is not None
    assert (slots.count, slots.nbytes, slots.free) == (3, 3 * 32 * 48 * 2, 3)
    taken = [slots.take() for _ in range(3)]
    assert all(t is not None for t in taken)
    arrays = [t for t in taken if t is not None]
    assert [a.shape for a in arrays] == [SHAPE] * 3
    assert arrays[0].dtype == np.uint16
    assert not np.shares_memory(arrays[0], arrays[1])
    places = [shared_region.locate(a) for a in arrays]
    assert [p[1] for p in places if p is not None] == [0, 3072, 6144]
    assert slots.take() is None  # all taken: the camera copies into private memory instead
    assert slots.misses == 1
    view = arrays[1].reshape(-1)[10:]  # a view of a view, as the sender and the worker make
    del taken, places, arrays
    gc.collect()
    assert slots.free == 2  # slot 1 is still viewed
    del view
    gc.collect()
    assert slots.free == 3
    again = slots.take()
    assert again is not None
    again[...] = 7
    assert again.flags.writeable


def test_closed_slots_still_hold_their_frames_but_are_no_longer_found() -> None:
    slots = FrameSlots.create(2, SHAPE, np.uint8)
    assert slots is not None
    frame = slots.take()
    assert frame is not None
    frame[...] = 9
    slots.close()
    slots.close()
    assert shared_region.locate(frame) is None  # queued frames of it then go through the ring
    assert int(frame.sum()) == 9 * 32 * 48


def test_no_slots_where_no_region_can_be_made() -> None:
    assert FrameSlots.create(0, SHAPE, np.uint16) is None
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (4096, hard))  # a file size limit refuses the region's memfd
    try:
        assert FrameSlots.create(4, SHAPE, np.uint16) is None
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
