"""GenICam cameras through harvesters: the only module that imports harvesters or genicam.

Design notes:
- Harvesters is wrapped thinly: ``Harvester`` finds producers and devices, ``ImageAcquirer`` opens the device,
  announces buffers and starts/stops the stream; the node map is used through :class:`FeatureAccess`, which checks a
  write before making it (type, range, increment, enum entries, access mode) so a ConfigError says what the
  device offers instead of repeating a GenApi exception.
- Fetching does not use ``ImageAcquirer.fetch``: that call drops incomplete buffers and restarts its timeout after
  each one (so it can hang). ``read`` waits on the stream's new-buffer event itself (harvesters' monitor, the one
  private attribute used, pinned by harvesters==1.4.3), copies the image out with
  :func:`~daemon.cameras.pixel_format.copy_pixels` and re-queues the buffer in a ``finally``. Incomplete buffers
  are delivered flagged, with unfilled bytes zeroed in the copy. The buffer is re-queued without genicam's
  clearing (``queue_buffer(buffer, False)``): its default zeroes the whole buffer under the GIL on every frame
  (0.35-0.42 ms for 8 MiB), which the copy's zeroing makes redundant.
- Frames are not copied at all where the producer takes buffers from us: the settings' ``frame_slots``
  (``num_buffers``) frame slots in shared memory (:mod:`daemon.ipc.frame_slots`) are lent to the running stream
  (:mod:`daemon.cameras.slot_loans`) before it starts, the producer writes images into them, and a delivered
  slot becomes the frame as it is; the frame stream hands it to a worker on this host by reference, and the slot
  goes back to the producer when the frame is stored or dropped. harvesters' own ``num_buffers`` buffers are the
  reserve: queued once, after the slots, then held out of the producer's queue while enough lent slots are queued
  (:meth:`GenicamCamera._top_up`); they carry the frames while the slots are out (a backed-up queue). A frame
  in one of them, or one whose layout differs from the configured one, is copied: into a free slot while there is
  one, so it still goes by reference, else into private memory. Lending needs the GIL-free wait (below), which
  recognises a lent slot when it is delivered; ``camera_started`` logs ``lent_slots`` and, when none are,
  ``lend_refused``.
- Lost device: a GenTL error while waiting or re-queuing, or the no-frame watchdog (``timeout_s``) firing while a
  register read fails. ``on_lost="fail"`` raises CameraLost; ``"reconnect"`` rebuilds harvester, device and
  settings with a doubling, capped backoff. The device restarts its ids at 0, so ids after a reconnect continue
  from the last id as if the device had run on (time since the last frame x AcquisitionFrameRate in free run, at
  least one frame lost): the jump is counted as a gap and the frame flagged AFTER_GAP.
- Waiting does not hold the GIL: ``read`` waits in the producer's ``EventGetData`` through ctypes
  (:mod:`daemon.cameras.new_buffer_event`), in calls of at most ``_EVENT_WAIT_S`` (0.1 s, so that a watchdog
  armed by a trigger from another thread is seen in time). genicam's own event wait holds the GIL
  while it waits: a wait of 100 ms froze every other thread of the process for 100 ms, and while one camera was
  silent (no trigger yet, or the device reconnecting) another camera in the same run lost frames (measured: 302 of
  776 at 100 frames/s, in 108 ms stalls). Where the GIL-free wait cannot be had (the producer's library is not
  matched, see that module), ``read`` falls back to genicam's wait in slices of ``_SLICE_S`` (2 ms; harvesters' own
  fetch loop uses 1 ms), yielding the GIL between them: the other thread's longest stall fell to 11-15 ms (5 ms
  slices still gave 160 ms: the yield rarely won), at about 6% of a core for a camera that waits all the time.
  ``camera_started`` logs which wait a camera uses (``event_wait``).
- Watchdog: in free run a frame is always expected; with TriggerMode On only after ``trigger()``.
- Harvesters logs every discarded buffer and error with tracebacks: its logger is silenced; we log events.
"""

from __future__ import annotations

import logging
import time
import weakref
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np
from genicam import genapi, gentl
from harvesters.core import Harvester

from daemon.cameras import pixel_format
from daemon.cameras.camera import CameraState, CameraStats, FrameCounter, FrameLayout, Lifecycle
from daemon.cameras.device_selection import choose_device, entry_from_properties
from daemon.cameras.features import FeatureAccess, brief
from daemon.cameras.gentl_producers import find_producers
from daemon.cameras.new_buffer_event import EventWaitUnavailable, NewBufferEvent
from daemon.cameras.settings import GenicamCameraSettings, NodeValue
from daemon.cameras.slot_loans import LentBuffer, LoanUnavailable, SlotLoans
from daemon.errors import CameraError, CameraLost, CameraTimeout, ConfigError
from daemon.ipc.frame import Frame
from daemon.ipc.frame_slots import FrameSlots
from daemon.log import get_logger

_S = CameraState
_log = get_logger("daemon.cameras.genicam")
_VENDOR_ERRORS = (gentl.GenericException, genapi.GenericException)
_SLICE_S = 0.002  # the fallback's longest single wait: genicam holds the GIL while it waits
_EVENT_WAIT_S = 0.1  # the GIL-free wait's longest single call: the watchdog is looked at again at least this often


def _forget_chunk_adapter(ia: Any) -> None:
    """genicam's ChunkAdapter registers ``weakref.finalize(self, self._destruct)``, a bound method, so the registry
    keeps every adapter (and the node map it holds) alive until interpreter exit; harvesters drops its reference
    without running it. Detaching that finalizer lets the adapter go with the acquirer (SWIG frees the C++ side).
    Best effort: the private attributes of both libraries are looked up, never required."""
    adapter = getattr(ia, "_chunk_adapter", None)
    finalizer = getattr(adapter, "_finalizer", None)
    if isinstance(finalizer, weakref.finalize):
        finalizer.detach()


class GenicamCamera:
    """A :class:`~daemon.cameras.camera.Camera` over a GenTL producer (see the module docstring)."""

    def __init__(self, settings: GenicamCameraSettings) -> None:
        self._settings = settings
        self._life = Lifecycle("genicam camera")
        self._counter = FrameCounter()
        self._layout: FrameLayout | None = None
        self._format: pixel_format.PixelFormat | None = None
        self._harvester: Any = None
        self._ia: Any = None
        self._monitor: Any = None
        self._event: NewBufferEvent | None = None  # the GIL-free wait, while acquiring (None: sliced wait)
        self._producers: list[Path] = []
        self._features: FeatureAccess | None = None
        self._info: Mapping[str, str] = MappingProxyType({})
        self._triggered = False
        self._software_trigger = False
        self._pending_triggers = 0
        self._last_progress = 0.0  # watchdog origin: last frame, start, first pending trigger or last timeout
        self._last_frame_at = 0.0
        self._id_offset = 0
        self._frame_rate: float | None = None
        self._slots: FrameSlots | None = None
        self._loans: SlotLoans | None = None  # frame slots lent to the producer, while acquiring
        self._held: list[Any] = []  # harvesters' buffers kept out of the producer's queue while lent slots serve
        self._own_queued = 0  # harvesters' buffers in the producer's queue
        self._lent_frames = self._copied_frames = 0  # since start: frames in a lent slot as they are, frames copied

    # -- description ----------------------------------------------------------------------------------------

    @property
    def settings(self) -> GenicamCameraSettings:
        return self._settings

    @property
    def state(self) -> CameraState:
        return self._life.state

    @property
    def layout(self) -> FrameLayout:
        if self._layout is None:
            raise CameraError("genicam camera: the frame layout is known after configure().")
        return self._layout

    @property
    def shape(self) -> tuple[int, ...]:
        return self.layout.shape

    @property
    def dtype(self) -> np.dtype[Any]:
        return self.layout.dtype

    @property
    def stats(self) -> CameraStats:
        return self._counter.snapshot()

    @property
    def info(self) -> Mapping[str, str]:
        return self._info

    @property
    def pixel_format(self) -> pixel_format.PixelFormat:
        """The configured pixel format (its ``bits`` are the significant bits per pixel)."""
        if self._format is None:
            raise CameraError("genicam camera: the pixel format is known after configure().")
        return self._format

    def read_feature(self, name: str) -> Any:
        """The device's current value of feature ``name`` (status pages, tests); ConfigError if it has none."""
        self._life.require("read a feature", _S.OPEN, _S.CONFIGURED, _S.ACQUIRING)
        return self._features_or_fail().read(name)

    # -- lifecycle ------------------------------------------------------------------------------------------

    def open(self) -> None:
        self._life.require("open", _S.NEW)
        self._connect()
        self._life.state = _S.OPEN

    def configure(self) -> None:
        self._life.require("configure", _S.OPEN, _S.CONFIGURED)
        self._apply_settings()
        if self._slots is not None:
            self._slots.close()
        layout = self.layout
        self._slots = FrameSlots.create(self._settings.frame_slots, layout.shape, layout.dtype)
        self._life.state = _S.CONFIGURED

    def start(self) -> None:
        self._life.require("start", _S.CONFIGURED)
        self._counter.begin()
        self._id_offset = 0
        self._lent_frames = self._copied_frames = 0
        self._start_stream()
        self._life.state = _S.ACQUIRING

    def trigger(self) -> None:
        self._life.require("trigger", _S.ACQUIRING)
        if not self._software_trigger:
            raise CameraError("genicam camera: trigger() needs trigger_mode On and trigger_source Software.")
        if self._pending_triggers == 0:
            self._last_progress = time.monotonic()  # a frame is expected from now on (watchdog)
        self._pending_triggers += 1  # before executing: the frame may be read before execute() returns
        try:
            self._features_or_fail().execute("TriggerSoftware")
        except CameraError:
            self._pending_triggers -= 1
            raise

    def read(self, timeout_s: float) -> Frame | None:
        if timeout_s < 0:
            raise ConfigError(f"timeout_s must be >= 0. Got {timeout_s} instead.")
        self._life.require("read", _S.ACQUIRING)
        deadline = time.monotonic() + timeout_s
        polled = False  # a zero timeout still looks once
        while True:
            now = time.monotonic()
            watchdog_left = self._watchdog_left(now)
            if watchdog_left is not None and watchdog_left <= 0:
                self._on_silence(now)
                continue
            if now >= deadline and polled:
                return None
            wait = deadline - now if watchdog_left is None else min(deadline - now, watchdog_left)
            sliced = self._event is None
            frame = self._wait_frame(min(wait, _SLICE_S if sliced else _EVENT_WAIT_S))
            polled = True
            if frame is not None:
                return frame
            if sliced:
                time.sleep(0)  # hand the GIL to whoever waits for it (another camera, the frame sender)

    def stop(self) -> None:
        if self._life.state is not _S.ACQUIRING:
            return
        self._life.state = _S.CONFIGURED
        self._detach_event()
        loans, self._loans = self._loans, None
        if loans is not None:
            loans.retire()
        self._held = []
        try:
            if self._ia is not None:
                self._ia.stop()
        except _VENDOR_ERRORS as error:
            raise CameraError(f"{self._label()}: stopping the stream failed: {brief(error)}.") from error
        finally:
            if loans is not None:
                loans.close(stream_closed=False)  # stopped and flushed: every lent slot can be revoked
            _log.info(
                "camera_stopped", lent_frames=self._lent_frames, copied_frames=self._copied_frames, **dict(self._info)
            )

    def close(self) -> None:
        if self._life.state is _S.CLOSED:
            return
        self._life.state = _S.CLOSED
        if self._slots is not None:
            self._slots.close()
            self._slots = None  # a closed camera kept for status (the daemon's history) holds no shared memory
        self._release()

    # -- connection -----------------------------------------------------------------------------------------

    def _label(self) -> str:
        serial = self._info.get("serial_number")
        return f"camera {serial}" if serial else "genicam camera"

    def _features_or_fail(self) -> FeatureAccess:
        if self._features is None:
            raise CameraLost("genicam camera: the device is not connected.")
        return self._features

    def _connect(self) -> None:
        """Load the producers, choose the device, open it."""
        logging.getLogger("harvesters.core").setLevel(logging.CRITICAL)
        producers = find_producers(self._settings.producers)
        self._producers = producers
        harvester = Harvester()
        self._harvester = harvester
        try:
            for path in producers:
                harvester.add_file(str(path))
            harvester.update()
            entries = [entry_from_properties(i, d.property_dict) for i, d in enumerate(harvester.device_info_list)]
            chosen = choose_device(entries, self._settings.select)
            self._ia = harvester.create(chosen.position)
        except _VENDOR_ERRORS as error:
            self._release()
            where = f"({self._settings.select.describe()}) via {', '.join(str(p) for p in producers)}"
            raise CameraError(f"opening a camera {where} failed: {brief(error)}.") from error
        except CameraError as error:
            self._release()
            raise CameraError(f"{error} Producers: {', '.join(str(p) for p in producers)}.") from error
        self._features = FeatureAccess(
            self._ia.remote_device.node_map, f"camera {chosen.serial_number}", _VENDOR_ERRORS
        )
        described = {
            "vendor": chosen.vendor,
            "model": chosen.model,
            "serial_number": chosen.serial_number,
            "user_id": chosen.user_id,
        }
        self._info = MappingProxyType({k: v for k, v in described.items() if v})
        _log.info("camera_opened", **dict(self._info))

    def _release(self) -> None:
        """Free the device and the producers; problems are logged, never raised (close must finish)."""
        ia, harvester = self._ia, self._harvester
        self._ia = self._monitor = self._features = self._harvester = None
        self._detach_event()  # after the monitor is gone: a read it aborts in another thread finds no device
        loans, self._loans = self._loans, None
        if loans is not None:
            loans.retire()
        self._held = []
        destroyed = False
        try:
            if ia is not None:
                # Leaving the acquirer's context runs harvesters' own finalizer (which destroys it) and so drops the
                # reference weakref.finalize's registry holds to it; ia.destroy() alone left every ImageAcquirer
                # (and its node map) alive for good: ~270 KB per open in a long-running daemon.
                _forget_chunk_adapter(ia)
                with ia:
                    pass
                destroyed = True
        except _VENDOR_ERRORS as error:
            _log.warning("camera_release_failed", step="destroy_acquirer", error=brief(error))
        if loans is not None:
            loans.close(stream_closed=destroyed)  # the stream's close revoked every buffer
        try:
            if harvester is not None:
                harvester.reset()
        except _VENDOR_ERRORS as error:
            _log.warning("camera_release_failed", step="reset_harvester", error=brief(error))

    # -- configuration --------------------------------------------------------------------------------------

    def _apply_settings(self) -> None:
        s, f = self._settings, self._features_or_fail()
        if s.pixel_format is not None:
            pixel_format.by_name(s.pixel_format)  # refuse what we cannot unpack before touching the device
        ordered: list[tuple[str, NodeValue | None]] = [("PixelFormat", s.pixel_format)]
        if s.width is not None and s.offset_x is not None:
            ordered.append(("OffsetX", 0))  # make room for the new width first
        if s.height is not None and s.offset_y is not None:
            ordered.append(("OffsetY", 0))
        ordered += [("Width", s.width), ("Height", s.height), ("OffsetX", s.offset_x), ("OffsetY", s.offset_y)]
        ordered.append(("ExposureTime", s.exposure_time_us))
        if s.frame_rate_hz is not None and f.has("AcquisitionFrameRateEnable"):
            ordered.append(("AcquisitionFrameRateEnable", True))
        ordered += [("AcquisitionFrameRate", s.frame_rate_hz), ("Gain", s.gain)]
        ordered += [("TriggerSelector", s.trigger_selector), ("TriggerMode", s.trigger_mode)]
        ordered += [("TriggerSource", s.trigger_source), *s.nodes.items()]
        for name, value in ordered:
            if value is not None:
                f.write(name, value)
        self._read_layout(f)

    def _read_layout(self, f: FeatureAccess) -> None:
        name = str(f.read("PixelFormat"))
        if name not in pixel_format.SUPPORTED:
            offered = [e for e in f.node("PixelFormat").symbolics if e in pixel_format.SUPPORTED]
            raise ConfigError(
                f"{self._label()}: its PixelFormat is {name!r}, which acqd cannot unpack; "
                f"set pixel_format to one it offers that acqd supports: {', '.join(offered) or 'none'}."
            )
        self._format = pixel_format.by_name(name)
        height, width = int(f.read("Height")), int(f.read("Width"))
        self._layout = FrameLayout(self._format.shape(height, width), self._format.dtype)
        self._triggered = f.has("TriggerMode") and f.read("TriggerMode") == "On"
        source = f.read("TriggerSource") if f.has("TriggerSource") else None
        self._software_trigger = self._triggered and source == "Software" and f.has("TriggerSoftware")
        free_rate = not self._triggered and f.has("AcquisitionFrameRate")
        self._frame_rate = float(f.read("AcquisitionFrameRate")) if free_rate else None  # sizes reconnect gaps

    # -- acquisition ----------------------------------------------------------------------------------------

    def _start_stream(self) -> None:
        """Wait and lend first, then start: the frame slots are announced and queued before the stream starts, as
        GenTL's own sequence has it (a producer may refuse buffers announced while it acquires)."""
        ia = self._ia
        if ia is None:
            raise CameraLost(f"{self._label()}: the device is not connected.")
        monitors = getattr(ia, "_new_buffer_event_monitor_dict", None)
        if not monitors:
            raise CameraError("harvesters exposes no new-buffer event monitor; acqd needs harvesters==1.4.3.")
        self._monitor = next(iter(monitors.values()))
        self._held = []
        self._event, wait_refused = self._attach_event(ia)
        self._loans, lend_refused = self._lend_slots(ia)
        try:
            ia.num_buffers = self._settings.num_buffers
            ia.start()
        except _VENDOR_ERRORS as error:
            self._abandon_start(ia)
            raise CameraError(f"{self._label()}: starting the stream failed: {brief(error)}.") from error
        own = list(getattr(ia, "_announced_buffers", ()))
        self._own_queued = len(own)
        if self._event is not None:
            self._event.add_buffers({int(buffer._handle): buffer for buffer in own})
        lent = 0 if self._loans is None else self._loans.count
        info = {"lent_slots": lent, **({} if lend_refused is None else {"lend_refused": lend_refused}), **self._info}
        if self._event is None:
            # a warning: every other thread of the run process pays for this camera's waits
            _log.warning("camera_started", event_wait="sliced", reason=wait_refused, **info)
        else:
            _log.info("camera_started", event_wait="gil_free", **info)
        self._pending_triggers = 0
        self._last_progress = self._last_frame_at = time.monotonic()

    def _abandon_start(self, ia: Any) -> None:
        """The stream did not start: stop what did (harvesters flushes every queue), take the slots back."""
        self._detach_event()
        loans, self._loans = self._loans, None
        if loans is None:
            return
        loans.retire()
        try:
            ia.stop()
        except _VENDOR_ERRORS as error:
            _log.warning("camera_release_failed", step="stop_after_failed_start", error=brief(error))
        loans.close(stream_closed=False, flush=True)  # harvesters flushes only a stream it started

    def _attach_event(self, ia: Any) -> tuple[NewBufferEvent | None, str | None]:
        """The GIL-free wait on the stream's new-buffer event, or None (the sliced wait) and why."""
        try:
            library = self._producer_library(ia)
            return NewBufferEvent.attach(library, int(self._monitor.handle), {}, self._label()), None
        except (EventWaitUnavailable, AttributeError, TypeError, ValueError, *_VENDOR_ERRORS) as error:
            return None, brief(error)

    def _lend_slots(self, ia: Any) -> tuple[SlotLoans | None, str | None]:
        """Every free frame slot lent to the stream before it starts (:mod:`daemon.cameras.slot_loans`), or None
        and why. Only with the GIL-free wait, which is what recognises a lent slot when the producer delivers it."""
        event, slots = self._event, self._slots
        if event is None or slots is None:
            return None, "needs the GIL-free wait" if event is None else "no frame slots"
        try:
            stream = ia._data_streams[0].module
            payload = int(stream.payload_size)
            if payload > slots.slot_bytes:
                return None, f"the stream's payload ({payload} bytes) is larger than a frame ({slots.slot_bytes})"
            handle = int(stream._handle)
            loans = SlotLoans.lend(self._producer_library(ia), handle, slots, _alignment(stream), self._label())
        except (LoanUnavailable, EventWaitUnavailable, AttributeError, IndexError, TypeError, *_VENDOR_ERRORS) as error:
            return None, brief(error)
        event.add_buffers({handle: loans.buffer(handle) for handle in loans.handles})
        return loans, None

    def _producer_library(self, ia: Any) -> Path:
        """The loaded producer the device belongs to: the path its system module reports (GenTL TL_INFO_PATHNAME),
        which must be one of the producers this camera loaded."""
        reported = Path(str(ia.system.module.path_name)).resolve()
        if reported not in self._producers:
            raise EventWaitUnavailable(f"the producer reports its path as {reported}, which is not one loaded")
        return reported

    def _detach_event(self) -> None:
        event, self._event = self._event, None
        if event is not None:
            event.close()

    def _watchdog_left(self, now: float) -> float | None:
        """Seconds until the no-frame watchdog fires; None when no frame is expected or there is no watchdog."""
        limit = self._settings.timeout_s
        if limit is None or (self._triggered and self._pending_triggers == 0):
            return None
        return self._last_progress + limit - now

    def _on_silence(self, now: float) -> None:
        """The watchdog fired: a lost device if a register read fails, else a timeout (and the watchdog re-arms)."""
        try:
            self._features_or_fail().probe()
        except CameraError as error:
            self._on_lost(error)
            return
        silent = now - self._last_progress
        self._last_progress = now
        _log.warning("camera_timeout", seconds=round(silent, 3), **dict(self._info))
        raise CameraTimeout(f"{self._label()}: no frame for {silent:.3f} s (timeout_s={self._settings.timeout_s}).")

    def _wait_frame(self, wait_s: float) -> Frame | None:
        monitor, event = self._monitor, self._event
        if monitor is None:
            raise CameraLost(f"{self._label()}: the device is not connected.")
        try:
            if event is not None:
                buffer = event.wait(wait_s)
                if buffer is None:
                    return None
            else:
                monitor.update_event_data(max(1, round(wait_s * 1000)))
                buffer = monitor.buffer
        except gentl.TimeoutException:
            return None
        except (CameraError, *_VENDOR_ERRORS) as error:
            self._on_lost(error)
            return None
        try:
            return self._take(buffer)
        except _VENDOR_ERRORS as error:
            self._on_lost(error)
            return None

    def _take(self, buffer: Any) -> Frame:
        """One delivered buffer as a Frame: a lent slot as it is, anything else copied out; then the buffer goes
        back to the producer (a lent slot once the frame is gone)."""
        lent = buffer if isinstance(buffer, LentBuffer) else None
        loans, handed = self._loans, False
        if lent is None:
            self._own_queued -= 1
        elif loans is not None:
            loans.delivered(lent)
        try:
            host_ns = time.time_ns()
            incomplete = not buffer.is_complete()
            layout, fmt = self.layout, self.pixel_format
            width = _info(buffer, "width", layout.shape[1])
            height = _info(buffer, "height", layout.shape[0])
            code = _info(buffer, "pixel_format", fmt.code)
            fmt = fmt if code == fmt.code else pixel_format.by_code(code)
            offset, padding_x = _info(buffer, "image_offset", 0), _info(buffer, "padding_x", 0)
            filled = _info(buffer, "size_filled", None) if incomplete else None
            as_is = offset == padding_x == 0 and fmt.shape(height, width) == layout.shape and fmt.dtype == layout.dtype
            if lent is not None and loans is not None and as_is:
                pixels, handed = loans.frame(lent), True
                self._lent_frames += 1
                if filled is not None:
                    pixels.reshape(-1).view(np.uint8)[max(filled, 0) :] = 0  # never stale bytes of an earlier frame
            else:
                pixels = pixel_format.copy_pixels(
                    buffer.raw_buffer,
                    fmt,
                    height,
                    width,
                    offset=offset,
                    padding_x=padding_x,
                    filled=filled,
                    out=None if self._slots is None else self._slots.take(),
                )
                self._copied_frames += 1
            device_id = int(buffer.frame_id)
            timestamp = _info(buffer, "timestamp_ns", None)
        finally:
            if not handed:
                self._give_back(buffer, lent)
            self._top_up()
        frame_id = device_id + self._id_offset
        flags = self._counter.observe(frame_id, incomplete)
        self._last_progress = self._last_frame_at = time.monotonic()
        self._pending_triggers = max(0, self._pending_triggers - 1)
        return Frame(pixels, frame_id, host_ns, timestamp, flags)

    def _give_back(self, buffer: Any, lent: LentBuffer | None) -> None:
        """A delivered buffer the frame does not view: back to the producer; harvesters' own buffers are held
        while lent slots serve (:meth:`_top_up` queues them when the producer runs short)."""
        if lent is not None:
            if self._loans is not None:
                self._loans.give_back(lent)
        elif self._loans is not None:
            self._held.append(buffer)
        else:
            buffer.parent.queue_buffer(buffer, False)  # not cleared: the copy zeroes what a frame left unfilled
            self._own_queued += 1

    def _top_up(self) -> None:
        """Keep buffers queued to the producer, lent slots first, harvesters' own as the reserve: at least half of
        ``num_buffers`` while any lent slot is queued, all of them once none is. Half, not all: a lent slot is out
        while its frame travels to the worker (one to three frames in a pipeline that keeps up), and a full target
        would send that many of every ``num_buffers`` frames through the reserve, copied. All once none is: the
        queue backed up and holds the lent slots, and the producer gets every buffer it had without lending (their
        frames are copied, as without lending)."""
        loans, depth = self._loans, self._settings.num_buffers
        if loans is None:
            return
        floor = max(1, depth // 2) if loans.queued else depth
        while self._held and self._own_queued + loans.queued < floor:
            buffer = self._held.pop()
            buffer.parent.queue_buffer(buffer, False)
            self._own_queued += 1

    def _on_lost(self, cause: BaseException) -> None:
        """Raise CameraLost, or reconnect (and return) when the settings ask for it."""
        _log.warning("camera_lost", error=brief(cause), on_lost=self._settings.on_lost, **dict(self._info))
        if self._settings.on_lost == "fail":
            self._release()
            raise CameraLost(f"{self._label()}: the device was lost: {brief(cause)}.") from cause
        self._reconnect(cause)

    def _reconnect(self, cause: BaseException) -> None:
        s = self._settings
        rate, last_frame_at = self._frame_rate, self._last_frame_at
        last: BaseException = cause
        for attempt in range(s.reconnect_attempts):
            self._release()
            time.sleep(min(s.reconnect_backoff_s * 2**attempt, s.reconnect_backoff_max_s))
            try:
                self._connect()
                self._apply_settings()
                self._start_stream()
            except (CameraError, ConfigError) as error:
                last = error
                _log.warning("camera_reconnect_failed", attempt=attempt + 1, error=str(error))
                continue
            self._continue_ids_after_outage(rate, time.monotonic() - last_frame_at)
            self._counter.count_reconnect()
            _log.info("camera_reconnected", attempt=attempt + 1, **dict(self._info))
            return
        self._release()
        raise CameraLost(
            f"{self._label()}: the device was lost and {s.reconnect_attempts} reconnect attempt(s) failed: {last}"
        ) from last

    def _continue_ids_after_outage(self, rate: float | None, silent: float) -> None:
        """The device restarts its ids at 0: continue ours as if it had run on through the outage (at least one
        frame lost), so the next frame is AFTER_GAP and the gap is counted."""
        last_id = self._counter.last_id
        if last_id is None:
            return
        steps = max(2, round(silent * rate)) if rate else 2
        self._id_offset = last_id + steps


def _info(buffer: Any, name: str, default: Any) -> Any:
    """A buffer property the producer may not provide (GenTL NOT_AVAILABLE): ``default`` then."""
    try:
        value = getattr(buffer, name)
    except gentl.GenericException:
        return default
    return default if value is None else value


def _alignment(stream: Any) -> int:
    """The address alignment the data stream asks of announced buffers (1 when it does not say)."""
    try:
        return max(int(stream.buffer_alignment), 1)
    except _VENDOR_ERRORS:
        return 1
