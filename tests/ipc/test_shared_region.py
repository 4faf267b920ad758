"""Shared regions: frames that already live in shared memory reach a worker on this host by reference, uncopied;
every check the worker makes before it maps one; and every way back to the ring or inline, with nothing lost."""

from __future__ import annotations

import errno
import fcntl
import gc
import os
from collections.abc import Callable, Iterator

import numpy as np
import pytest
from pytest_mock import MockerFixture

from daemon.errors import ProtocolError
from daemon.ipc import shared_region
from daemon.ipc.frame import Frame
from daemon.ipc.frame_receiver import FrameReceiver
from daemon.ipc.frame_sender import FrameSender
from daemon.ipc.header import FrameHeader
from daemon.ipc.messages import Region, RegionReply, Welcome, decode_control, encode_control
from daemon.ipc.shared_region import HEADER_BYTES, MAGIC, REGION_REF, MappedRegions, SharedRegion, locate
from daemon.ipc.stream_status import SenderState, SenderStats
from daemon.ipc.wire import MessageKind, encode_prefix
from tests.ipc.stream_helpers import FakeSender, WorkerLoop, control_messages_until, wait_until

pytestmark = pytest.mark.skipif(not shared_region.available(), reason="sealed memfd files are Linux-only")

SHAPE = (64, 64)  # uint16: 8 KiB a frame
FRAMES = 40
SMALL_RING = 1 << 20


@pytest.fixture
def region() -> Iterator[SharedRegion]:
    made = SharedRegion.create(FRAMES * 8192)
    yield made
    made.close()


def fill(region: SharedRegion) -> np.ndarray:
    """Every frame slot of ``region`` filled with its own random pixels; the slots as one array."""
    slots = region.array(np.uint16, (FRAMES, *SHAPE))
    slots[...] = np.random.default_rng(7).integers(0, 4096, slots.shape, dtype=np.uint16)
    return slots


def frame_of(slots: np.ndarray, frame_id: int) -> Frame:
    pixels = slots[frame_id % FRAMES].view()
    pixels.flags.writeable = False  # as a camera hands out a kept frame
    return Frame(pixels, frame_id, host_time_ns=1_000 + frame_id, device_timestamp_ns=frame_id)


# ---- the region's own books ------------------------------------------------------------------------------------


def test_a_region_is_sealed_and_carries_magic_and_token(region: SharedRegion) -> None:
    offer = region.offer
    assert (offer.pid, offer.nbytes) == (os.getpid(), FRAMES * 8192)
    fd = offer.fd
    assert os.fstat(fd).st_size == HEADER_BYTES + offer.nbytes
    seals = fcntl.fcntl(fd, fcntl.F_GET_SEALS)
    assert seals & fcntl.F_SEAL_SHRINK
    assert seals & fcntl.F_SEAL_GROW
    assert seals & fcntl.F_SEAL_SEAL
    with pytest.raises(PermissionError):
        os.ftruncate(fd, 4096)  # no one can shrink it under a worker's mapping
    assert os.pread(fd, len(MAGIC) + 16, 0) == MAGIC + bytes.fromhex(offer.token)


def test_frames_are_located_only_while_the_region_is_open_and_wholly_inside_it(region: SharedRegion) -> None:
    slots = fill(region)
    assert locate(slots[3]) == (region, 3 * 8192)
    assert locate(slots[FRAMES - 1]) == (region, (FRAMES - 1) * 8192)
    assert region.offset_of(slots[3, :, ::2]) is None  # not contiguous
    assert locate(slots[3].copy()) is None  # private memory
    region.close()
    region.close()  # idempotent
    assert locate(slots[3]) is None  # closed: later frames of it go through the ring
    assert slots[3].sum() > 0  # the memory itself lives on with its views


def test_the_descriptor_closes_at_close_or_with_the_last_holder() -> None:
    closed = SharedRegion.create(8192)
    view = closed.array(np.uint8, (8192,))
    fd = closed.offer.fd
    closed.close()
    assert not os.path.exists(f"/proc/self/fd/{fd}")  # a worker told too late is refused, and nothing leaks
    view[...] = 3  # frames made from it stay usable
    assert int(view.sum()) == 3 * 8192
    dropped = SharedRegion.create(8192)  # an owner that never calls close
    fd = dropped.offer.fd
    assert os.path.exists(f"/proc/self/fd/{fd}")
    del dropped
    gc.collect()
    assert not os.path.exists(f"/proc/self/fd/{fd}")
    assert locate(view) is None


# ---- what a worker maps ----------------------------------------------------------------------------------------


def test_a_worker_maps_a_region_read_only_and_views_its_frames(region: SharedRegion) -> None:
    slots = fill(region)
    mapped = MappedRegions()
    mapped.attach(region.offer)
    mapped.attach(region.offer)  # again: nothing changes
    assert len(mapped) == 1
    view = mapped.view(region.region_id, 5 * 8192, 8192, np.uint16, SHAPE)
    np.testing.assert_array_equal(view, slots[5])
    with pytest.raises(ValueError, match="read-only"):
        view[0, 0] = 1
    with pytest.raises(ProtocolError, match="outside the"):
        mapped.view(region.region_id, FRAMES * 8192 - 4096, 8192, np.uint16, SHAPE)
    with pytest.raises(ProtocolError, match="has not mapped"):
        mapped.view(region.region_id + 1, 0, 8192, np.uint16, SHAPE)
    mapped.close()
    mapped.close()
    assert len(mapped) == 0


def with_fields(offer: Region, **changes: object) -> Region:
    values = {name: getattr(offer, name) for name in ("region_id", "pid", "fd", "nbytes", "token")}
    return Region(**(values | changes))  # type: ignore[arg-type]


def test_a_region_without_the_token_or_of_another_size_is_refused(region: SharedRegion) -> None:
    mapped = MappedRegions()
    with pytest.raises(ProtocolError, match="announced token"):
        mapped.attach(with_fields(region.offer, token="00" * 16))
    with pytest.raises(ProtocolError, match="must be"):
        mapped.attach(with_fields(region.offer, nbytes=region.nbytes - 4096))
    assert len(mapped) == 0


def test_a_descriptor_that_is_not_a_sealed_region_is_refused() -> None:
    fd = os.memfd_create("not-sealed", os.MFD_CLOEXEC)  # right size and magic, but anyone could shrink it
    try:
        os.ftruncate(fd, HEADER_BYTES + 8192)
        os.pwrite(fd, MAGIC + bytes(16), 0)
        offer = Region(1, os.getpid(), fd, 8192, "00" * 16)
        with pytest.raises(ProtocolError, match="not sealed"):
            MappedRegions().attach(offer)
    finally:
        os.close(fd)
    read_end, write_end = os.pipe()  # not a regular file
    try:
        with pytest.raises(ProtocolError, match="regular file"):
            MappedRegions().attach(Region(1, os.getpid(), read_end, 8192, "00" * 16))
    finally:
        os.close(read_end)
        os.close(write_end)


def test_a_descriptor_that_does_not_exist_is_refused() -> None:
    closed = os.open(os.devnull, os.O_RDONLY)
    os.close(closed)
    with pytest.raises(ProtocolError, match="cannot be opened"):
        MappedRegions().attach(Region(1, os.getpid(), closed, 8192, "00" * 16))


# ---- end to end over real sockets ------------------------------------------------------------------------------


def stream_region_frames(
    sender: FrameSender, receiver: FrameReceiver, slots: np.ndarray, count: int
) -> tuple[WorkerLoop, SenderStats]:
    receiver.connect()
    worker = WorkerLoop(receiver).start()
    assert sender.wait_for_worker(5.0) is not None
    for i in range(count):
        assert sender.offer(frame_of(slots, i), "k") is None
    result = sender.finish(timeout_s=10.0)
    worker.stop()
    assert result.state is SenderState.FINISHED
    return worker, result.stats


def check_arrived(worker: WorkerLoop, slots: np.ndarray, count: int) -> None:
    assert [r.header.frame_id for r in worker.received] == list(range(count))
    for got in worker.received:
        np.testing.assert_array_equal(got.pixels, slots[got.header.frame_id % FRAMES])


def test_frames_in_a_region_go_by_reference_and_arrive_intact(
    region: SharedRegion, make_sender: Callable[..., FrameSender], make_receiver: Callable[..., FrameReceiver]
) -> None:
    slots = fill(region)
    sender = make_sender()
    receiver = make_receiver(sender.endpoint, ring_bytes=SMALL_RING, window_frames=8)
    worker, stats = stream_region_frames(sender, receiver, slots, 200)
    assert stats.balance.balanced
    assert stats.balance.stored == 200
    # Until the worker's REGION_REPLY, frames of the region go through the ring; after it, by reference.
    assert stats.frames_via_ring + stats.frames_via_region == 200
    assert stats.frames_via_ring >= 1
    assert stats.frames_via_region >= 150
    check_arrived(worker, slots, 200)
    sender.close()
    assert sender._window.lent == 0


def test_a_worker_that_cannot_map_the_region_gets_every_frame_through_the_ring(
    region: SharedRegion,
    make_sender: Callable[..., FrameSender],
    make_receiver: Callable[..., FrameReceiver],
    mocker: MockerFixture,
) -> None:
    # /proc mounted with hidepid, or another user: the open fails (injected; this process may open its own fds)
    real_open = os.open
    tried: list[str] = []

    def refuse_proc(path: str, *args: int) -> int:
        if str(path).startswith("/proc/"):
            tried.append(path)
            raise PermissionError(errno.EACCES, "Permission denied", path)
        return real_open(path, *args)

    mocker.patch("daemon.ipc.shared_region.os.open", side_effect=refuse_proc)
    slots = fill(region)
    sender = make_sender()
    receiver = make_receiver(sender.endpoint, ring_bytes=SMALL_RING, window_frames=8)
    worker, stats = stream_region_frames(sender, receiver, slots, 60)
    assert (stats.balance.stored, stats.frames_via_ring, stats.frames_via_region) == (60, 60, 0)
    assert stats.balance.balanced
    assert len(tried) == 1  # announced once: the refusal is remembered
    check_arrived(worker, slots, 60)


def test_without_a_ring_region_frames_go_inline_and_no_region_is_announced(
    region: SharedRegion, make_sender: Callable[..., FrameSender], make_receiver: Callable[..., FrameReceiver]
) -> None:
    slots = fill(region)
    sender = make_sender()
    receiver = make_receiver(sender.endpoint, ring_bytes=0)  # a worker on another host offers none
    worker, stats = stream_region_frames(sender, receiver, slots, 30)
    assert (stats.balance.stored, stats.frames_via_ring, stats.frames_via_region) == (30, 0, 0)
    assert stats.junk == {}
    check_arrived(worker, slots, 30)


def test_frames_queued_when_their_region_closes_go_through_the_ring(
    region: SharedRegion, make_sender: Callable[..., FrameSender], make_receiver: Callable[..., FrameReceiver]
) -> None:
    slots = fill(region)
    sender = make_sender()
    receiver = make_receiver(sender.endpoint, ring_bytes=SMALL_RING, window_frames=8)
    receiver.connect()
    assert sender.wait_for_worker(5.0) is not None
    queued = [frame_of(slots, i) for i in range(20)]
    region.close()  # the camera closed with these frames still queued
    worker = WorkerLoop(receiver).start()
    for frame in queued:
        assert sender.offer(frame, "k") is None
    result = sender.finish(timeout_s=10.0)
    worker.stop()
    assert (result.stats.balance.stored, result.stats.frames_via_ring, result.stats.frames_via_region) == (20, 20, 0)
    check_arrived(worker, slots, 20)


def test_a_lost_worker_gives_back_the_frames_lent_to_it_and_counts_them(
    region: SharedRegion, make_sender: Callable[..., FrameSender], make_receiver: Callable[..., FrameReceiver]
) -> None:
    slots = fill(region)
    sender = make_sender(liveness_timeout_s=1.0, heartbeat_interval_s=0.2)
    receiver = make_receiver(sender.endpoint, ring_bytes=SMALL_RING, window_frames=64)
    receiver.connect()
    assert sender.wait_for_worker(5.0) is not None
    worker = WorkerLoop(receiver).start()
    assert sender.offer(frame_of(slots, 0), "k") is None
    wait_until(lambda: sender.stats().frames_stored == 1, what="the first frame stored")  # the REGION_REPLY came first
    worker.stop()  # the worker stops taking frames, then vanishes holding the rest
    for i in range(1, 6):
        assert sender.offer(frame_of(slots, i), "k") is None
    wait_until(lambda: sender.stats().frames_sent == 6, what="six frames sent")
    assert sender.stats().frames_via_region == 5
    receiver.close()
    wait_until(lambda: sender.stats().state is SenderState.WORKER_LOST, timeout_s=5.0, what="worker lost")
    stats = sender.stats()
    assert stats.balance.balanced
    assert (stats.balance.stored, stats.balance.dropped.total) == (1, 5)
    sender.close()
    assert sender._window.lent == 0


# ---- a hostile or confused sender ------------------------------------------------------------------------------


def test_a_receiver_refuses_a_region_it_cannot_verify_and_says_why(
    fake_sender: FakeSender, make_receiver: Callable[..., FrameReceiver]
) -> None:
    fake_sender.answer_hello(encode_control(Welcome("run-test", {}, 0.05, 5.0)))
    receiver = make_receiver(fake_sender.endpoint, ring_bytes=0)
    receiver.connect()
    read_end, write_end = os.pipe()
    try:
        fake_sender.send(encode_control(Region(9, os.getpid(), read_end, 8192, "ab" * 16)))
        replies = control_messages_until(fake_sender.router, lambda got: any(isinstance(m, RegionReply) for m in got))
    finally:
        os.close(read_end)
        os.close(write_end)
    reply = next(m for m in replies if isinstance(m, RegionReply))
    assert (reply.region_id, reply.mapped) == (9, False)
    assert "regular file" in reply.reason


def test_a_frame_naming_a_region_never_mapped_is_junk(
    fake_sender: FakeSender, make_receiver: Callable[..., FrameReceiver]
) -> None:
    fake_sender.answer_hello(encode_control(Welcome("run-test", {}, 0.05, 5.0)))
    receiver = make_receiver(fake_sender.endpoint, ring_bytes=0)
    receiver.connect()
    header = FrameHeader.for_frame(
        frame_of(np.zeros((FRAMES, *SHAPE), np.uint16), 0), run_id="run-test", key="k", seq=0
    )
    fake_sender.send(header.encode(), b"", REGION_REF.pack(77, 0))
    wait_until(lambda: receiver.stats().junk.get("malformed") == 1, what="the frame counted malformed")


def test_region_messages_round_trip_and_refuse_bad_values() -> None:
    region = Region(5, 10, 3, 8192, "cd" * 16)
    assert decode_control(encode_control(region)) == region
    reply = RegionReply(5, False, "no /proc here")
    assert decode_control(encode_control(reply)) == reply
    body = b'{"region_id":5,"mapped":"yes"}'
    with pytest.raises(ProtocolError, match="mapped must be true or false"):
        decode_control(encode_prefix(MessageKind.REGION_REPLY) + body)
    with pytest.raises(ProtocolError, match="region_id"):
        decode_control(encode_prefix(MessageKind.REGION) + b'{"region_id":0,"pid":1,"fd":3,"nbytes":1,"token":"x"}')
