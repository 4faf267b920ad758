"""Frame slots lent to the producer (daemon/cameras/slot_loans.py), on the fake producer through real harvesters +
genicam: frames arrive in shared memory uncopied, a slot goes back to the producer only once no frame views it,
harvesters' own buffers stand in while the slots are out, and stop, restart and close take the slots back."""

from __future__ import annotations

import gc
import weakref
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from genicam import gentl
from pytest_mock import MockerFixture
from structlog.testing import capture_logs

from daemon.cameras import pattern, slot_loans
from daemon.cameras.genicam import GenicamCamera
from daemon.cameras.slot_loans import LoanUnavailable, SlotLoans
from daemon.errors import CameraError
from daemon.ipc import shared_region
from daemon.ipc.frame import Frame
from daemon.ipc.frame_slots import FrameSlots
from tests.cameras.genicam_support import acquiring, fake_settings, producer_mapped, silent_settings

pytestmark = [
    pytest.mark.genicam,
    pytest.mark.skipif(not shared_region.available(), reason="sealed memfd files are Linux-only"),
]

HEIGHT, WIDTH = 48, 64


def settings(cti: Path, **kwargs: Any) -> Any:
    return fake_settings(cti, width=WIDTH, height=HEIGHT, pixel_format="Mono16", **kwargs)


def read(cam: GenicamCamera) -> Frame:
    frame = cam.read(2.0)
    assert frame is not None
    return frame


def lent(frame: Frame) -> bool:
    """The frame views a frame slot (the producer wrote it there) rather than owning a copy."""
    return shared_region.locate(frame.pixels) is not None and not frame.pixels.flags.owndata


def check(frame: Frame) -> None:
    np.testing.assert_array_equal(frame.pixels, pattern.radial_sine(frame.frame_id, HEIGHT, WIDTH, np.uint16))


def started(logs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [entry for entry in logs if entry["event"] == "camera_started"]


def test_frames_arrive_in_lent_slots_and_each_slot_returns_when_its_frame_goes(fake_cti: Path) -> None:
    with capture_logs() as logs, acquiring(settings(fake_cti, num_buffers=4)) as cam:
        where: list[tuple[bool, int | None]] = []
        for _ in range(30):
            frame = read(cam)
            check(frame)
            found = shared_region.locate(frame.pixels)
            where.append((lent(frame), None if found is None else found[1]))
            del frame, found  # the slot goes back to the producer
        delivered = cam.stats.frames_delivered
    assert [(e["event_wait"], e["lent_slots"]) for e in started(logs)] == [("gil_free", 4)]
    # the slots were queued before the stream started, harvesters' four buffers after them; a slot is queued again
    # once its frame is gone (behind harvesters' buffers, this once), and harvesters' buffers then stay out: at
    # least two lent slots are queued whenever the camera looks
    assert [is_lent for is_lent, _ in where] == [True] * 4 + [False] * 4 + [True] * 22
    assert len({offset for is_lent, offset in where if is_lent}) == 4
    assert delivered == 30


def test_a_held_frame_is_never_overwritten_and_harvesters_buffers_stand_in(fake_cti: Path) -> None:
    with acquiring(settings(fake_cti, num_buffers=4, frame_rate_hz=200.0)) as cam:
        held = [read(cam) for _ in range(4)]  # every lent slot
        assert all(lent(f) for f in held)
        copies = [read(cam) for _ in range(20)]  # the slots are out: harvesters' buffers go round, copied
        assert not any(lent(f) for f in copies)
        stream = cam._ia._data_streams[0].module  # all four of them, as without lending (one may be filling)
        assert stream.num_queued + stream.num_awaiting_delivery >= 3
        ids = [f.frame_id for f in held + copies]
        assert ids == sorted(set(ids))  # each frame once, in order (a loaded machine may make the producer skip)
        for frame in held + copies:
            check(frame)  # the held frames still hold their own pixels
        del held
        gc.collect()
        later = [read(cam) for _ in range(12)]
        assert sum(lent(f) for f in later) >= 3  # the slots came back to the producer (looked up while open)
    for frame in later:
        check(frame)


def test_an_incomplete_frame_in_a_reused_slot_has_no_stale_bytes(fake_cti: Path) -> None:
    # Mono16 frames of one slot's size cut at half height every third frame: a reused slot still holds the
    # previous frame's lower half, which the camera must zero
    cam_settings = settings(fake_cti, num_buffers=1, nodes={"FaultIncompleteEvery": 3})
    checked = 0
    with acquiring(cam_settings) as cam:
        for _ in range(60):
            frame = read(cam)
            if frame.incomplete and lent(frame):
                expected = pattern.radial_sine(frame.frame_id, HEIGHT, WIDTH, np.uint16)
                np.testing.assert_array_equal(frame.pixels[: HEIGHT // 2], expected[: HEIGHT // 2])
                assert not frame.pixels[HEIGHT // 2 :].any()
                checked += 1
            del frame
    assert checked >= 3


def test_stop_takes_the_slots_back_and_start_lends_the_free_ones_again(fake_cti: Path) -> None:
    with capture_logs() as logs, acquiring(settings(fake_cti, num_buffers=3)) as cam:
        frames = [read(cam) for _ in range(3)]
        assert all(lent(f) for f in frames)
        kept = frames[2]
        del frames
        cam.stop()
        assert cam._loans is None
        assert cam._slots is not None
        assert cam._slots.free == 2  # revoked; the third is the kept frame's
        cam.start()
        again = [read(cam) for _ in range(30)]
        assert again[0].frame_id == 0  # a new acquisition
        check(kept)  # lent no more while it is viewed: the second acquisition never wrote it
        del again
        gc.collect()
        assert cam._slots.free == 0  # everything free is lent
        del kept
        gc.collect()
        assert cam._slots.free == 1  # the kept frame's slot is back, and not lent to a stream it was not given to
    assert [e["lent_slots"] for e in started(logs)] == [3, 2]


def test_closing_with_frames_out_leaves_them_readable_and_the_producer_unloaded(fake_cti: Path) -> None:
    assert not producer_mapped(fake_cti)
    with acquiring(settings(fake_cti, num_buffers=2)) as cam:
        frames = [read(cam) for _ in range(4)]
        assert [lent(f) for f in frames] == [True, True, False, False]
        found = shared_region.locate(frames[0].pixels)
        assert found is not None
        region = weakref.ref(found[0])
        del found
    assert not producer_mapped(fake_cti)  # no reference of ours outlives the camera
    assert all(shared_region.locate(f.pixels) is None for f in frames)  # the camera closed: no longer looked up
    for frame in frames:
        check(frame)
    del frames, frame  # the releases find the loans closed: nothing calls into the unloaded producer
    gc.collect()
    assert cam.state.value == "closed"  # still referenced, as the daemon's history keeps a finished run's cameras
    assert region() is None  # yet its shared memory is gone


def test_a_frame_whose_layout_differs_is_copied_out_of_its_slot(fake_cti: Path, mocker: MockerFixture) -> None:
    # the fake producer always delivers the configured layout: a producer reporting another width is injected
    real_info = SlotLoans.info

    def narrower(self: SlotLoans, handle: int, name: str) -> Any:
        value = real_info(self, handle, name)
        return WIDTH // 2 if name == "width" else value

    mocker.patch.object(SlotLoans, "info", narrower)
    with acquiring(settings(fake_cti, num_buffers=2)) as cam:
        frames = [read(cam) for _ in range(8)]
        assert not any(lent(f) for f in frames)
    narrow = [f for f in frames if f.pixels.shape == (HEIGHT, WIDTH // 2)]  # the lent slots' frames
    assert len(narrow) >= 4
    for frame in narrow:  # the slot's first rows, read as 32 pixels a row
        full = pattern.radial_sine(frame.frame_id, HEIGHT, WIDTH, np.uint16)
        np.testing.assert_array_equal(frame.pixels, full.reshape(-1)[: HEIGHT * WIDTH // 2].reshape(HEIGHT, -1))
    for frame in frames:
        if frame.pixels.shape == (HEIGHT, WIDTH):
            check(frame)  # harvesters' buffers: genicam reads their width as it is
    assert [f.frame_id for f in frames] == list(range(8))  # copied and given back at once: no slot ran out


def test_when_the_producer_refuses_a_slot_frames_are_copied_into_free_slots(
    fake_cti: Path, mocker: MockerFixture
) -> None:
    mocker.patch.object(SlotLoans, "lend", side_effect=LoanUnavailable("refused for this test"))
    with capture_logs() as logs, acquiring(settings(fake_cti, num_buffers=3)) as cam:
        held = [read(cam) for _ in range(3)]  # each copied into a free slot
        extra = read(cam)  # a fourth while they are held: private memory
        assert all(shared_region.locate(f.pixels) is not None and not f.pixels.flags.owndata for f in held)
        assert shared_region.locate(extra.pixels) is None
        assert extra.pixels.flags.owndata
        for frame in [*held, extra]:
            check(frame)
        del held, frame
        gc.collect()
        again = read(cam)  # the slots came back with the frames
        assert shared_region.locate(again.pixels) is not None
    assert [(e["lent_slots"], e["lend_refused"]) for e in started(logs)] == [(0, "refused for this test")]


def test_lend_refuses_a_misaligned_slot_and_takes_back_what_it_announced(fake_cti: Path) -> None:
    slots = FrameSlots.create(2, (HEIGHT, WIDTH), np.uint16)
    assert slots is not None
    with acquiring(settings(fake_cti, num_buffers=1)) as cam:
        ia = cam._ia
        stream = int(ia._announced_buffers[0]._parent_handle)
        announced = ia._data_streams[0].module.num_announced
        # the first slot starts on a page, the second 6144 bytes later: not a multiple of 4096
        with pytest.raises(LoanUnavailable, match="not aligned to the 4096 bytes"):
            SlotLoans.lend(fake_cti, stream, slots, 4096, "camera TEST")
        assert ia._data_streams[0].module.num_announced == announced  # the first slot was revoked
        assert slots.free == 2
        check(read(cam))
    slots.close()


def test_slots_the_producer_will_not_give_back_stay_out_and_mapped(fake_cti: Path) -> None:
    # revoking a queued buffer is refused (GC_ERR_BUSY) until the stream stops: a real refusal, on demand
    slots = FrameSlots.create(2, (HEIGHT, WIDTH), np.uint16)
    assert slots is not None
    with acquiring(silent_settings(fake_cti, width=WIDTH, height=HEIGHT, pixel_format="Mono16")) as cam:
        ia = cam._ia
        loans = SlotLoans.lend(fake_cti, int(ia._announced_buffers[0]._parent_handle), slots, 1, "camera TEST")
        assert loans.count == loans.queued == 2
        before = len(slot_loans._NEVER_UNMAPPED)
        with capture_logs() as logs:
            loans.close(stream_closed=False)
        assert [(e["event"], e.get("slots")) for e in logs if e["log_level"] == "warning"][-1] == (
            "camera_slots_kept",
            2,
        )
        assert "GenTL error -1022" in next(e["error"] for e in logs if e["event"] == "camera_slot_revoke_failed")
        assert slots.free == 0  # never handed out again
        assert len(slot_loans._NEVER_UNMAPPED) == before + 2
        loans.close(stream_closed=False)  # idempotent: nothing more is called
    slots.close()


def test_a_stream_that_fails_to_start_gives_every_slot_back(fake_cti: Path, mocker: MockerFixture) -> None:
    # the slots are lent before harvesters starts the stream; a start the device refuses is injected
    cam = GenicamCamera(settings(fake_cti, num_buffers=3))
    try:
        cam.open()
        cam.configure()
        assert cam._slots is not None
        start = mocker.patch("harvesters.core.ImageAcquirer.start", side_effect=gentl.IoException("cable pulled"))
        with pytest.raises(CameraError, match=r"starting the stream failed: .*cable pulled"):
            cam.start()
        assert start.call_count == 1
        assert cam._loans is None
        assert cam._event is None
        assert cam._slots.free == 3  # flushed and revoked: free for the next start
        assert cam._ia._data_streams[0].module.num_announced == 0
        mocker.stopall()
        cam.start()  # the real start lends them all again
        assert cam._loans is not None
        assert cam._loans.count == 3
        check(read(cam))
    finally:
        cam.close()
