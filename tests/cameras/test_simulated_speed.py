"""The simulator is fast enough to stand in for a real camera: 2048x2048 uint16 radial sine > 100 fps.

Measured in process CPU time, so a loaded shared machine does not fail it; unpaced reads never sleep.
"""

from __future__ import annotations

import time

import numpy as np

from daemon.cameras import pattern
from daemon.cameras.settings import SimulatedCameraSettings
from daemon.cameras.simulated import SimulatedCamera


def test_radial_sine_2048_uint16_unpaced_exceeds_100_fps() -> None:
    cam = SimulatedCamera(SimulatedCameraSettings(pattern="radial_sine", height=2048, width=2048, dtype="uint16"))
    cam.open()
    cam.configure()
    cam.start()
    cam.read(1.0)  # caches warm
    best = 0.0
    for _ in range(3):  # best of three bursts, in CPU time: the 2 cores are shared with other work
        count, began = 0, time.process_time()
        while count < 40:
            assert cam.read(1.0) is not None
            count += 1
        best = max(best, count / (time.process_time() - began))
    last = cam.read(1.0)
    cam.close()
    assert last is not None
    np.testing.assert_array_equal(last.pixels, pattern.radial_sine(last.frame_id, 2048, 2048, np.uint16))
    assert best > 100, f"{best:.0f} fps"
