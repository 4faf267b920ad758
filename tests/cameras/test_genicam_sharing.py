"""Two GenICam cameras in one process: a camera that waits (no trigger yet, a device reconnecting) must not stall
the other one's thread. genicam holds the GIL while it waits for a buffer, so a long wait froze the process."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from daemon.cameras.genicam import GenicamCamera
from tests.cameras.genicam_support import acquiring, fake_settings, silent_settings

pytestmark = pytest.mark.genicam


def read_until(cam: GenicamCamera, stop: threading.Event, ids: list[int]) -> None:
    while not stop.is_set():
        frame = cam.read(0.5)
        if frame is not None:
            ids.append(frame.frame_id)


def test_a_silent_camera_costs_another_camera_no_frame(fake_cti: Path) -> None:
    silent = silent_settings(fake_cti, "FAKE0001")
    # 100 frames/s into 16 buffers: a stall of 160 ms loses frames; each 100 ms wait used to stall ~108 ms
    busy = fake_settings(fake_cti, "FAKE0002", frame_rate_hz=100.0, width=256, height=256)
    stop = threading.Event()
    waited: list[int] = []
    delivered: list[int] = []
    with acquiring(silent) as waiting, acquiring(busy) as streaming:
        threads = [
            threading.Thread(target=read_until, args=(waiting, stop, waited), daemon=True),
            threading.Thread(target=read_until, args=(streaming, stop, delivered), daemon=True),
        ]
        for thread in threads:
            thread.start()
        time.sleep(3.0)
        stop.set()
        for thread in threads:
            thread.join(5.0)
        stats = streaming.stats
    assert waited == []
    assert len(delivered) > 100
    assert (stats.frames_lost, stats.gaps) == (0, 0), stats
    assert delivered == list(range(delivered[0], delivered[0] + len(delivered)))
