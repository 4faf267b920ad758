"""The GIL-free wait on a stream's new-buffer event (daemon/cameras/new_buffer_event.py), on the fake producer
through real harvesters + genicam: how the camera uses it, what it does when it cannot be had, failures, and
closing while another thread waits."""

from __future__ import annotations

import shutil
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from pytest_mock import MockerFixture
from structlog.testing import capture_logs

from daemon.cameras.new_buffer_event import EventWaitUnavailable, NewBufferEvent
from daemon.errors import CameraError, CameraLost
from tests.cameras.genicam_support import acquiring, fake_settings, producer_mapped, silent_settings

if TYPE_CHECKING:
    from harvesters.core import Harvester

pytestmark = pytest.mark.genicam


def started_events(logs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [entry for entry in logs if entry["event"] == "camera_started"]


def test_a_camera_on_the_fake_producer_waits_once_without_the_gil(fake_cti: Path, mocker: MockerFixture) -> None:
    with capture_logs() as logs, acquiring(silent_settings(fake_cti)) as cam:
        wait = mocker.spy(NewBufferEvent, "wait")
        began = time.monotonic()
        assert cam.read(0.3) is None
        waited = time.monotonic() - began
        cam.trigger()
        frame = cam.read(2.0)
    assert [(e["log_level"], e["event_wait"], e["serial_number"]) for e in started_events(logs)] == [
        ("info", "gil_free", "FAKE0001")
    ]
    # calls of 0.1 s for the 0.3 s (the sliced wait makes ~150 of 2 ms), then one that returns the triggered frame
    timeouts = [call.args[1] for call in wait.call_args_list]
    assert 3 <= len(timeouts) <= 5, timeouts
    assert timeouts[0] == pytest.approx(0.1)
    assert 0.25 <= waited < 1.0
    assert frame is not None
    assert frame.frame_id == 0


def test_without_the_gil_free_wait_the_camera_falls_back_to_slices(fake_cti: Path, mocker: MockerFixture) -> None:
    mocker.patch.object(NewBufferEvent, "attach", side_effect=EventWaitUnavailable("no library for this test"))
    with capture_logs() as logs, acquiring(fake_settings(fake_cti)) as cam:
        ids = [cam.read(2.0).frame_id for _ in range(20)]  # type: ignore[union-attr]
    assert [(e["log_level"], e["event_wait"], e["reason"]) for e in started_events(logs)] == [
        ("warning", "sliced", "no library for this test")
    ]
    assert ids == list(range(20))


def test_attach_refuses_a_library_not_loaded_and_an_event_without_a_handle(
    fake_cti: Path, fake_harvester: Harvester, tmp_path: Path
) -> None:
    copy = tmp_path / "elsewhere.cti"  # the same producer, at a path this process never loaded
    shutil.copy(fake_cti, copy)
    ia = fake_harvester.create(0)
    ia.start()
    monitor = next(iter(ia._new_buffer_event_monitor_dict.values()))
    buffers = {int(b._handle): b for b in ia._announced_buffers}
    with pytest.raises(EventWaitUnavailable, match="is not loaded in this process"):
        NewBufferEvent.attach(copy, int(monitor.handle), buffers, "test")
    with pytest.raises(EventWaitUnavailable, match="has no handle"):
        NewBufferEvent.attach(fake_cti, 0, buffers, "test")


def test_a_failed_wait_names_the_gentl_error_and_the_producers_text(fake_cti: Path) -> None:
    with acquiring(fake_settings(fake_cti)) as cam:
        bogus = NewBufferEvent.attach(fake_cti, 1, {1: object()}, "camera TEST")
        try:
            with pytest.raises(CameraError, match=r"camera TEST: waiting for a frame failed: GenTL error -10\d\d "):
                bogus.wait(0.1)
            with pytest.raises(CameraError, match="not a registered event handle"):
                bogus.wait(0.1)
        finally:
            bogus.close()
        assert cam.read(2.0) is not None  # the camera's own event is untouched


def test_a_buffer_never_announced_is_an_error_not_a_guess(fake_cti: Path) -> None:
    with acquiring(fake_settings(fake_cti)) as cam:
        event = cam._event
        assert event is not None
        stranger = NewBufferEvent.attach(fake_cti, event._handle.value or 0, {1: object()}, "camera TEST")
        try:
            with pytest.raises(CameraError, match=r"camera TEST: the producer delivered a buffer never announced"):
                stranger.wait(2.0)
        finally:
            stranger.close()


def test_a_wait_failure_is_a_lost_device(fake_cti: Path, mocker: MockerFixture) -> None:
    failure = CameraError("camera FAKE0001: waiting for a frame failed: GenTL error -1010 (injected).")
    with acquiring(fake_settings(fake_cti, on_lost="fail")) as cam:
        assert cam.read(2.0) is not None
        mocker.patch.object(NewBufferEvent, "wait", side_effect=failure)
        with pytest.raises(CameraLost, match=r"the device was lost: .*GenTL error -1010 \(injected\)") as info:
            cam.read(1.0)
    assert info.value.__cause__ is failure


def test_a_wait_failure_with_reconnect_attaches_a_new_wait(fake_cti: Path, mocker: MockerFixture) -> None:
    settings = fake_settings(fake_cti, on_lost="reconnect", reconnect_backoff_s=0.01)
    real_wait = NewBufferEvent.wait
    failures = iter([CameraError("injected")])

    def fail_once(self: NewBufferEvent, timeout_s: float) -> Any:
        error = next(failures, None)
        if error is not None:
            raise error
        return real_wait(self, timeout_s)

    with capture_logs() as logs, acquiring(settings) as cam:
        first = cam._event
        mocker.patch.object(NewBufferEvent, "wait", fail_once)
        frame = cam.read(3.0)
        assert cam._event is not None
        assert cam._event is not first
        assert first is not None
        assert first._closed
    assert frame is not None
    assert [e["event_wait"] for e in started_events(logs)] == ["gil_free", "gil_free"]
    assert cam.stats.reconnects == 1


def test_close_from_another_thread_aborts_a_waiting_read(fake_cti: Path) -> None:
    outcome: list[BaseException | None] = []
    with acquiring(silent_settings(fake_cti)) as cam:

        def read() -> None:
            try:
                cam.read(10.0)
                outcome.append(None)
            except BaseException as error:  # recorded for the assertion
                outcome.append(error)

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        time.sleep(0.2)  # the reader is inside EventGetData now
        began = time.monotonic()
        cam.close()
        closed_in = time.monotonic() - began
        reader.join(5.0)
    assert closed_in < 2.0
    assert not reader.is_alive()
    assert len(outcome) == 1
    assert isinstance(outcome[0], CameraError)


def test_closing_the_wait_is_idempotent_and_later_waits_return_none(fake_cti: Path) -> None:
    with acquiring(fake_settings(fake_cti)) as cam:
        event = cam._event
        assert event is not None
        cam.stop()
        assert cam._event is None
        assert event._closed
        event.close()
        assert event.wait(0.5) is None
        cam.start()
        assert cam._event is not None
        assert cam.read(2.0) is not None


def test_every_start_takes_one_library_reference_and_every_stop_gives_it_back(fake_cti: Path) -> None:
    assert not producer_mapped(fake_cti)  # nothing before this test left the producer loaded
    for _ in range(3):
        with acquiring(fake_settings(fake_cti)) as cam:
            assert cam.read(2.0) is not None
            cam.stop()
            cam.start()  # a second wait, a second reference
            assert cam._event is not None
            assert cam.read(2.0) is not None
            assert producer_mapped(fake_cti)
        # harvesters unloads the producer on close, as it did before the wait held a reference of its own
        assert not producer_mapped(fake_cti)
