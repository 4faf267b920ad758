"""The frame ring: frames through shared memory between a sender and a worker on this host, and every way the
sender refuses a ring it should not write into (frames then go inline, nothing is lost)."""

from __future__ import annotations

import errno
import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
import zmq
from pytest_mock import MockerFixture

from daemon.errors import ProtocolError
from daemon.ipc.frame_receiver import FrameReceiver
from daemon.ipc.frame_ring import HEADER_BYTES, MAGIC, RING_DIR, RING_PREFIX, FrameRing, RingOffer, RingWriter
from daemon.ipc.frame_sender import FrameSender
from daemon.ipc.header import FrameHeader
from daemon.ipc.messages import Credit, Welcome, decode_control, encode_control
from daemon.ipc.stream_status import SenderState
from daemon.ipc.wire import MessageKind, encode_prefix
from tests.ipc.stream_helpers import ListStore, WorkerLoop, make_frame, recv_frame_parts, take, wait_until

FRAME_SHAPE = (64, 64)  # uint16: 8 KiB
SMALL_RING = 1 << 20  # 1 MiB: fits a container's small /dev/shm, many frames of FRAME_SHAPE


@pytest.fixture
def ring() -> Iterator[FrameRing]:
    made = FrameRing(4 * 8192)
    yield made
    made.unlink()


def ring_files() -> set[str]:
    return {p.name for p in RING_DIR.glob(f"{RING_PREFIX}{os.getpid()}-*")}


def stream(
    sender: FrameSender, receiver: FrameReceiver, count: int, shape: tuple[int, ...] = FRAME_SHAPE
) -> tuple[WorkerLoop, list[np.ndarray]]:
    receiver.connect()
    worker = WorkerLoop(receiver, ListStore()).start()
    assert sender.wait_for_worker(5.0) is not None
    sent = []
    for i in range(count):
        frame = make_frame(i, shape, np.uint16)
        frame.pixels[...] = np.random.default_rng(i).integers(0, 4096, shape, dtype=np.uint16)
        assert sender.offer(frame, "k") is None
        sent.append(frame.pixels.copy())
    return worker, sent


def check_all_arrived(worker: WorkerLoop, sent: list[np.ndarray]) -> None:
    assert [r.header.frame_id for r in worker.received] == list(range(len(sent)))
    for pixels, got in zip(sent, worker.received, strict=True):
        np.testing.assert_array_equal(got.pixels, pixels)


# ---- the ring's own books --------------------------------------------------------------------------------------


def test_the_ring_file_is_private_and_carries_magic_and_token(ring: FrameRing) -> None:
    info = ring.path.stat()
    assert (info.st_mode & 0o777, info.st_size) == (0o600, HEADER_BYTES + ring.offer.nbytes)
    head = ring.path.read_bytes()[: len(MAGIC) + 16]
    assert head == MAGIC + bytes.fromhex(ring.offer.token)
    ring.unlink()
    ring.unlink()  # idempotent
    assert not ring.path.exists()


def test_placement_wraps_frees_out_of_order_and_refuses_what_does_not_fit(ring: FrameRing) -> None:
    writer = RingWriter.attach(ring.offer)
    frame = np.full(4096, 7, np.uint16)  # 8 KiB: the ring holds 4
    assert [writer.place(seq, frame) for seq in range(4)] == [0, 8192, 16384, 24576]
    assert writer.place(4, frame) is None  # full
    writer.freed(1, 1)  # LOST in the middle: its bytes wait until the older frame is done
    assert writer.place(4, frame) is None
    writer.consumed_below(1)  # frames 0 and (already) 1 done: the oldest extent is now 2
    assert writer.place(4, frame) == 0
    assert writer.place(5, frame) == 8192
    assert writer.place(6, frame) is None
    assert writer.in_use == 4
    writer.consumed_below(7)
    assert writer.in_use == 0
    assert writer.place(7, np.zeros(4 * 4096 + 1, np.uint16)) is None  # larger than the ring: inline
    view = ring.view(8192, frame.nbytes, np.uint16, (64, 64))
    assert (view == 7).all()
    assert not view.flags.writeable
    writer.close()
    writer.close()  # idempotent
    assert writer.place(8, frame) is None


def test_a_view_outside_the_ring_is_a_protocol_error(ring: FrameRing) -> None:
    with pytest.raises(ProtocolError, match="outside"):
        ring.view(3 * 8192 + 64, 8192, np.uint16, (64, 64))
    with pytest.raises(ProtocolError, match="outside"):
        ring.view(-64, 64, np.uint8, (64,))


# ---- what the sender refuses to write into ---------------------------------------------------------------------


def offer_for(path: Path, ring: FrameRing) -> RingOffer:
    return RingOffer(str(path), ring.offer.nbytes, ring.offer.token)


def test_a_ring_outside_the_ring_folder_is_refused(ring: FrameRing, tmp_path: Path) -> None:
    target = tmp_path / f"{RING_PREFIX}x"
    target.write_bytes(ring.path.read_bytes())
    with pytest.raises(ProtocolError, match="must be /dev/shm/acqd-ring-"):
        RingWriter.attach(offer_for(target, ring))
    with pytest.raises(ProtocolError, match="must be /dev/shm/acqd-ring-"):
        RingWriter.attach(offer_for(RING_DIR / "passwd", ring))


def test_a_symlinked_ring_is_refused(ring: FrameRing, tmp_path: Path) -> None:
    link = RING_DIR / f"{RING_PREFIX}{os.getpid()}-link"
    link.symlink_to(ring.path)
    try:
        with pytest.raises(ProtocolError, match="cannot be opened"):
            RingWriter.attach(offer_for(link, ring))
    finally:
        link.unlink()


def test_a_ring_without_the_token_or_of_another_size_is_refused(ring: FrameRing) -> None:
    other = FrameRing(4 * 8192)
    try:
        with pytest.raises(ProtocolError, match="token"):
            RingWriter.attach(RingOffer(str(other.path), other.offer.nbytes, ring.offer.token))
        with pytest.raises(ProtocolError, match="must be"):
            RingWriter.attach(RingOffer(str(ring.path), 2 * 8192, ring.offer.token))
    finally:
        other.unlink()


def test_a_fifo_is_refused(ring: FrameRing) -> None:
    fifo = RING_DIR / f"{RING_PREFIX}{os.getpid()}-fifo"
    os.mkfifo(fifo, 0o600)
    try:
        with pytest.raises(ProtocolError, match="regular file"):
            RingWriter.attach(offer_for(fifo, ring))
    finally:
        fifo.unlink()


def hello_with_ring(ring_body: object) -> bytes:
    return encode_prefix(MessageKind.HELLO) + json.dumps({"worker_id": "hostile", "ring": ring_body}).encode()


@pytest.mark.parametrize(
    "ring_body", [{"path": "/etc/passwd", "nbytes": 4096, "token": "00" * 16}, {"path": 1}, {"path": "x", "more": 1}]
)
def test_a_hostile_ring_offer_gets_inline_frames_and_nothing_is_written(
    make_sender: Callable[..., FrameSender], raw_socket: Callable[[int], zmq.Socket[bytes]], ring_body: object
) -> None:
    passwd = Path("/etc/passwd").read_bytes()
    sender = make_sender()
    dealer = raw_socket(zmq.DEALER)
    dealer.connect(sender.endpoint)
    dealer.send(hello_with_ring(ring_body))
    assert isinstance(decode_control(dealer.recv()), Welcome)
    dealer.send(encode_control(Credit(1, 1 << 20)))
    sender.offer(make_frame(0), "k")
    parts = recv_frame_parts(dealer)
    assert len(parts) == 2  # inline: header + pixels
    assert FrameHeader.decode(parts[0]).seq == 0
    assert sender.stats().frames_via_ring == 0
    assert Path("/etc/passwd").read_bytes() == passwd


def test_a_ring_offer_that_is_not_an_object_is_junk(
    make_sender: Callable[..., FrameSender], raw_socket: Callable[[int], zmq.Socket[bytes]]
) -> None:
    sender = make_sender()
    dealer = raw_socket(zmq.DEALER)
    dealer.connect(sender.endpoint)
    dealer.send(hello_with_ring("/dev/shm/acqd-ring-1"))
    wait_until(lambda: sender.stats().junk.get("malformed") == 1, what="the HELLO counted malformed")
    assert sender.stats().state is SenderState.WAITING  # still waiting for a real worker


# ---- end to end over real sockets ------------------------------------------------------------------------------


def test_frames_go_through_the_ring_and_arrive_intact(
    make_sender: Callable[..., FrameSender], make_receiver: Callable[..., FrameReceiver]
) -> None:
    before = ring_files()
    sender = make_sender()
    receiver = make_receiver(sender.endpoint, ring_bytes=SMALL_RING, window_frames=8)
    worker, sent = stream(sender, receiver, 200)
    result = sender.finish(timeout_s=10.0)
    worker.stop()
    assert result.state is SenderState.FINISHED
    assert result.stats.balance.balanced
    assert result.stats.balance.stored == 200
    assert result.stats.frames_via_ring == 200
    check_all_arrived(worker, sent)
    assert ring_files() == before  # unlinked once the sender had it mapped


def test_a_ring_smaller_than_the_window_holds_the_sender_back_and_loses_nothing(
    make_sender: Callable[..., FrameSender], make_receiver: Callable[..., FrameReceiver]
) -> None:
    sender = make_sender()
    receiver = make_receiver(sender.endpoint, window_frames=16, ring_bytes=3 * 8192)
    worker, sent = stream(sender, receiver, 300)
    result = sender.finish(timeout_s=10.0)
    worker.stop()
    assert result.stats.balance.balanced
    assert result.stats.balance.stored == 300
    assert result.stats.frames_via_ring == 300  # the sender waited for room instead of going inline
    check_all_arrived(worker, sent)


def test_frames_larger_than_the_ring_go_inline(
    make_sender: Callable[..., FrameSender], make_receiver: Callable[..., FrameReceiver]
) -> None:
    sender = make_sender()
    receiver = make_receiver(sender.endpoint, ring_bytes=4096)
    worker, sent = stream(sender, receiver, 20)
    result = sender.finish(timeout_s=10.0)
    worker.stop()
    assert (result.stats.balance.stored, result.stats.frames_via_ring) == (20, 0)
    check_all_arrived(worker, sent)


def test_no_shared_memory_left_means_inline_frames(
    make_sender: Callable[..., FrameSender], make_receiver: Callable[..., FrameReceiver], mocker: MockerFixture
) -> None:
    full = OSError(errno.ENOSPC, "No space left on device")
    mocker.patch("daemon.ipc.frame_ring.os.posix_fallocate", side_effect=full)  # a full /dev/shm, on demand
    before = ring_files()
    sender = make_sender()
    receiver = make_receiver(sender.endpoint)
    worker, sent = stream(sender, receiver, 30)
    result = sender.finish(timeout_s=10.0)
    worker.stop()
    assert (result.stats.balance.stored, result.stats.frames_via_ring) == (30, 0)
    check_all_arrived(worker, sent)
    assert ring_files() == before  # the half-made file was removed


def test_a_worker_that_never_used_its_ring_removes_it_on_close(
    make_sender: Callable[..., FrameSender], make_receiver: Callable[..., FrameReceiver]
) -> None:
    before = ring_files()
    sender = make_sender()
    receiver = make_receiver(sender.endpoint, ring_bytes=SMALL_RING)
    receiver.connect()
    assert len(ring_files() - before) == 1
    receiver.close()
    receiver.close()
    assert ring_files() == before


def test_a_lost_worker_frees_the_ring_and_counts_its_frames(
    make_sender: Callable[..., FrameSender], make_receiver: Callable[..., FrameReceiver]
) -> None:
    sender = make_sender(liveness_timeout_s=1.0, heartbeat_interval_s=0.2)
    receiver = make_receiver(sender.endpoint, ring_bytes=SMALL_RING, window_frames=8)
    receiver.connect()
    assert sender.wait_for_worker(5.0) is not None
    for i in range(5):
        sender.offer(make_frame(i, FRAME_SHAPE, np.uint16), "k")
    item = take(receiver)
    assert item.seq == 0
    wait_until(lambda: sender.stats().frames_sent == 5, what="five frames sent")
    receiver.close()  # the worker vanishes holding five frames
    wait_until(lambda: sender.stats().state is SenderState.WORKER_LOST, timeout_s=5.0, what="worker lost")
    stats = sender.stats()
    assert stats.frames_via_ring == 5
    assert stats.balance.balanced
    assert stats.balance.dropped.total == 5
    sender.close()
