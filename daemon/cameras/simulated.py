"""The simulated camera: deterministic patterns at a chosen pace, with faults on demand.

A product module (the daemon runs it for demos, benchmarks and dry runs), not a test helper.

Design notes:
- Patterns: ``radial_sine`` frame k is exactly ``pattern.radial_sine(k, ...)``; ``random`` frame k depends only
  on ``seed`` and k; ``empty`` is zeros. Frame ids start at 0 with each ``start()``.
- The radial sine is one gather per frame: ``lut[(idx + 1024 - shift) % 1024]`` equals ``roll(lut, shift)[idx]``,
  so a frame is ``take(rolled_lut, idx)`` with ``idx`` cached once as ``intp`` (numpy's fastest index type), done
  for one quadrant and mirrored (about 3x faster than the whole frame: 2048x2048 uint16 in ~4 ms of CPU).
- Rendered frames are kept (:class:`PhaseCache`): the radial sine repeats every ``PHASES`` (128) frames, so while
  ``PHASES`` frames fit in ``phase_cache_mib`` (default 256 MiB: up to 1024x1024 uint16) each phase is drawn once
  and later frames share it, read-only: a simulated frame then costs what a real camera's DMA costs the host,
  nothing. The cache is a shared region (:mod:`daemon.ipc.shared_region`), so the frame stream sends a worker on
  this host such a frame by reference, without copying it (private memory where no sealed memfd can be made).
  2048x2048 uint16 needs 1024 MiB: drawn every time instead, a frame costs 3.3 ms of the camera thread (measured
  at 90 frames/s; 0.37 ms with the cache), which on 2 cores the pipeline's compression threads miss. Measured
  with the pipeline at 280 frames/s of 1024x1024 uint16: drawing took 32-37% of a core (1.1-1.3 ms a frame,
  slower than alone because the compressing threads share the memory bus). The cache is populated as phases are
  first drawn and handed back to the kernel when the camera and the last frame from it are gone. ``empty`` shares
  one read-only frame; ``random`` is drawn every time. A frame the ``incomplete_every`` fault damages is a copy.
- Pacing: in free run frame k is due one ``frame_period_s`` after frame k-1 was due (a slow reader gets the
  backlog at once, nothing is dropped); with ``trigger="software"`` each ``trigger()`` releases one frame.
- A condition variable lets ``trigger()`` from another thread wake a waiting ``read()``.
"""

from __future__ import annotations

import math
import mmap
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from functools import lru_cache
from types import MappingProxyType
from typing import Any

import numpy as np
import numpy.typing as npt

from daemon.cameras import pattern
from daemon.cameras.camera import CameraState, CameraStats, FrameCounter, FrameLayout, Lifecycle
from daemon.cameras.settings import SimulatedCameraSettings
from daemon.errors import CameraError, CameraLost, CameraTimeout, ConfigError
from daemon.ipc.frame import Frame
from daemon.ipc.shared_region import SharedRegion

_S = CameraState


@lru_cache(maxsize=4)
def _quadrant_index(height: int, width: int) -> npt.NDArray[np.intp]:
    """``(r * 16) % 1024`` for ``|dy|, |dx|`` from 0 to their largest value: one quadrant of the rings."""
    cy, cx = height // 2, width // 2
    dy = np.arange(max(cy, height - 1 - cy) + 1, dtype=np.int64)[:, None]
    dx = np.arange(max(cx, width - 1 - cx) + 1, dtype=np.int64)[None, :]
    r = np.floor(np.sqrt((dy * dy + dx * dx).astype(np.float64))).astype(np.int64)  # exact isqrt, as pattern.py
    idx = ((r * pattern.RADIUS_STEP) % pattern.LUT_SIZE).astype(np.intp)
    idx.setflags(write=False)
    return idx


@lru_cache(maxsize=512)
def _rolled_lut(bits: int, dtype: str, shift: int) -> npt.NDArray[np.generic]:
    lut = np.roll(pattern.sine_lut(bits).astype(dtype), shift)
    lut.setflags(write=False)
    return lut


def render_radial_sine(frame_id: int, height: int, width: int, dtype: str, bits: int) -> npt.NDArray[np.generic]:
    """The same pixels as ``pattern.radial_sine(frame_id, height, width, dtype, bits)``, faster: one quadrant is
    drawn (the rings depend on ``|dy|`` and ``|dx|`` only) and mirrored into the other three."""
    shift = (frame_id * pattern.FRAME_STEP) % pattern.LUT_SIZE
    quadrant = np.take(_rolled_lut(bits, dtype, shift), _quadrant_index(height, width))
    cy, cx = height // 2, width // 2
    out = np.empty((height, width), dtype=dtype)
    out[cy:, cx:] = quadrant[: height - cy, : width - cx]  # rows y >= cy have |dy| = y - cy
    out[cy:, :cx] = quadrant[: height - cy, cx:0:-1]  # columns x < cx have |dx| = cx - x, from cx down to 1
    out[:cy, cx:] = quadrant[cy:0:-1, : width - cx]
    out[:cy, :cx] = quadrant[cy:0:-1, cx:0:-1]
    return out


def render_random(frame_id: int, height: int, width: int, dtype: str, bits: int, seed: int) -> npt.NDArray[Any]:
    """Uniform noise over ``0 .. 2**bits - 1``; frame k is a function of ``(seed, k)`` only."""
    rng = np.random.default_rng([seed, frame_id])
    return rng.integers(0, 1 << bits, size=(height, width), dtype=np.dtype(dtype))


PHASES = pattern.LUT_SIZE // math.gcd(pattern.FRAME_STEP, pattern.LUT_SIZE)  # the radial sine's period (frames)
KEPT_PHASES = {"radial_sine": PHASES, "empty": 1}  # frames a pattern repeats (random: none, it is drawn each time)


def kept_frame_bytes(settings: SimulatedCameraSettings) -> int:
    """The memory a camera of ``settings`` keeps drawn frames in: every phase of its pattern when they all fit in
    ``phase_cache_mib``, else 0 (it draws every frame; ``random`` always does)."""
    phases = KEPT_PHASES.get(settings.pattern, 0)
    nbytes = phases * settings.height * settings.width * np.dtype(settings.dtype).itemsize
    return nbytes if nbytes <= settings.phase_cache_mib << 20 else 0


class PhaseCache:
    """Read-only frames of a periodic pattern, drawn once each, in one shared region (see the design notes)."""

    def __init__(self, phases: int, shape: tuple[int, int], dtype: np.dtype[Any]) -> None:
        count = phases * math.prod(shape)
        nbytes = max(1, count * dtype.itemsize)
        try:
            self._region: SharedRegion | None = SharedRegion.create(nbytes, "acqd-phase-cache")
        except OSError:  # no sealed memfd here, or a file size limit: private memory (frames go through the ring)
            self._region = None
        if self._region is not None:
            self._frames = self._region.array(dtype, (phases, *shape))
        else:
            mapping = mmap.mmap(-1, nbytes, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
            self._frames = np.frombuffer(mapping, dtype=dtype, count=count).reshape(phases, *shape)
        self._drawn = np.zeros(phases, dtype=bool)
        self._phases = phases

    def frame(self, frame_id: int, draw: Callable[[int], npt.NDArray[Any]]) -> npt.NDArray[Any]:
        """Frame ``frame_id`` (read-only), drawn by ``draw(frame_id)`` the first time its phase is asked for."""
        phase = frame_id % self._phases
        view = self._frames[phase]
        if not self._drawn[phase]:
            view[...] = draw(frame_id)
            self._drawn[phase] = True
        out: npt.NDArray[Any] = view.view()
        out.setflags(write=False)
        return out

    def close(self) -> None:
        """No more frames are taken from here (those in flight keep the memory alive). Idempotent."""
        if self._region is not None:
            self._region.close()


class SimulatedCamera:
    """A :class:`~daemon.cameras.camera.Camera` that draws its frames (see the module docstring)."""

    def __init__(self, settings: SimulatedCameraSettings) -> None:
        self._settings = settings
        self._life = Lifecycle(f"simulated camera ({settings.pattern})")
        self._counter = FrameCounter()
        self._layout: FrameLayout | None = None
        self._cond = threading.Condition()
        self._triggers: deque[float] = deque()
        self._clock0 = time.monotonic_ns()
        self._next_id = 0
        self._next_due = 0.0
        self._last_progress = 0.0
        self._stalled = False
        self._lost = False
        self._cache: PhaseCache | None = None

    @property
    def settings(self) -> SimulatedCameraSettings:
        return self._settings

    @property
    def state(self) -> CameraState:
        return self._life.state

    @property
    def layout(self) -> FrameLayout:
        if self._layout is None:
            raise CameraError("simulated camera: the frame layout is known after configure().")
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
        if self._life.state in (_S.NEW, _S.CLOSED):
            return MappingProxyType({})
        s = self._settings
        return MappingProxyType(
            {"vendor": "acqd", "model": f"simulated {s.pattern}", "serial_number": f"sim-{s.pattern}-{s.seed}"}
        )

    def open(self) -> None:
        self._life.require("open", _S.NEW)
        self._clock0 = time.monotonic_ns()
        self._life.state = _S.OPEN

    def configure(self) -> None:
        self._life.require("configure", _S.OPEN, _S.CONFIGURED)
        s = self._settings
        self._layout = FrameLayout((s.height, s.width), np.dtype(s.dtype))
        if self._cache is not None:
            self._cache.close()
        self._cache = None
        if kept_frame_bytes(s):
            self._cache = PhaseCache(KEPT_PHASES[s.pattern], (s.height, s.width), self._layout.dtype)
        if s.pattern == "radial_sine":
            _quadrant_index(s.height, s.width)  # warm the cache outside the acquisition
        self._life.state = _S.CONFIGURED

    def start(self) -> None:
        self._life.require("start", _S.CONFIGURED)
        now = time.monotonic()
        with self._cond:
            self._triggers.clear()
            self._next_id = 0
            self._next_due = now
            self._last_progress = now
            self._stalled = False
            self._lost = False
            self._counter.begin()
            self._life.state = _S.ACQUIRING

    def trigger(self) -> None:
        if self._settings.trigger != "software":
            raise CameraError("simulated camera: trigger() needs trigger='software'; this camera runs free.")
        with self._cond:
            self._life.require("trigger", _S.ACQUIRING)
            self._triggers.append(time.monotonic())
            self._cond.notify_all()

    def read(self, timeout_s: float) -> Frame | None:
        if timeout_s < 0:
            raise ConfigError(f"timeout_s must be >= 0. Got {timeout_s} instead.")
        self._life.require("read", _S.ACQUIRING)
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while True:
                if self._life.state is not _S.ACQUIRING:
                    return None  # stopped or closed from another thread while waiting
                self._raise_if_lost()
                now = time.monotonic()
                ready_at = self._ready_at()
                if ready_at is not None and ready_at <= now:
                    break
                self._check_watchdog(now, ready_at)
                if now >= deadline:
                    return None
                wake = deadline if ready_at is None else min(deadline, ready_at)
                if ready_at is not None and self._settings.timeout_s is not None:
                    wake = min(wake, self._last_progress + self._settings.timeout_s)
                self._cond.wait(max(wake - now, 0.0))
            frame_id = self._take_next_id()
        return self._make_frame(frame_id)

    def stop(self) -> None:
        if self._life.state is not _S.ACQUIRING:
            return
        with self._cond:
            self._triggers.clear()
            self._life.state = _S.CONFIGURED
            self._cond.notify_all()

    def close(self) -> None:
        with self._cond:
            self._triggers.clear()
            if self._cache is not None:
                self._cache.close()
            self._cache = None  # frames still in flight keep their memory alive; it goes with the last of them
            self._life.state = _S.CLOSED
            self._cond.notify_all()

    # -- internals (called with the condition held) ---------------------------------------------------------

    def _raise_if_lost(self) -> None:
        disconnect_at = self._settings.faults.disconnect_at_frame
        if not self._lost and disconnect_at is not None and self._next_id >= disconnect_at:
            self._lost = True
        if self._lost:
            raise CameraLost(f"simulated camera: disconnected at frame {disconnect_at} (faults.disconnect_at_frame).")

    def _ready_at(self) -> float | None:
        """When the next frame can be delivered; None while waiting for a software trigger."""
        if self._settings.trigger == "software":
            base = self._triggers[0] if self._triggers else None
        else:
            base = self._next_due
        if base is None:
            return None
        faults = self._settings.faults
        if faults.stall_at_frame is not None and not self._stalled and self._next_id >= faults.stall_at_frame:
            return base + faults.stall_s
        return base

    def _check_watchdog(self, now: float, ready_at: float | None) -> None:
        limit = self._settings.timeout_s
        if limit is None or ready_at is None:
            return  # nothing is expected while waiting for a trigger
        since = max(self._last_progress, self._triggers[0] if self._triggers else 0.0)
        if now - since >= limit:
            self._last_progress = now  # the watchdog re-arms: the next read waits timeout_s again
            raise CameraTimeout(f"simulated camera: no frame for {now - since:.3f} s (timeout_s={limit}).")

    def _take_next_id(self) -> int:
        faults = self._settings.faults
        frame_id = self._next_id
        ready_at = self._ready_at()
        if faults.stall_at_frame is not None and frame_id >= faults.stall_at_frame:
            self._stalled = True
        now = time.monotonic()
        if self._settings.trigger == "software":
            self._triggers.popleft()
        elif self._settings.frame_period_s > 0 and ready_at is not None:
            self._next_due = ready_at + self._settings.frame_period_s
        else:
            self._next_due = now
        step = 1
        if faults.drop_every is not None and (frame_id + 1) % faults.drop_every == faults.drop_every - 1:
            step = 2  # the next id is dropped "upstream"
        self._next_id = frame_id + step
        self._last_progress = now
        return frame_id

    def _draw(self, frame_id: int) -> npt.NDArray[Any]:
        s = self._settings
        if s.pattern == "radial_sine":
            return render_radial_sine(frame_id, s.height, s.width, s.dtype, s.depth)
        if s.pattern == "random":
            return render_random(frame_id, s.height, s.width, s.dtype, s.depth, s.seed)
        return np.zeros((s.height, s.width), dtype=s.dtype)

    def _make_frame(self, frame_id: int) -> Frame:
        s = self._settings
        cache = self._cache
        pixels = self._draw(frame_id) if cache is None else cache.frame(frame_id, self._draw)
        every = s.faults.incomplete_every
        incomplete = every is not None and frame_id > 0 and frame_id % every == 0
        if incomplete:
            pixels = pixels.copy()  # a cached frame is shared and read-only
            pixels[s.height // 2 :] = 0
        flags = self._counter.observe(frame_id, incomplete)
        return Frame(
            pixels=pixels,
            frame_id=frame_id,
            host_time_ns=time.time_ns(),
            device_timestamp_ns=time.monotonic_ns() - self._clock0,
            flags=flags,
        )
