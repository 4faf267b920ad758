"""The AddressSanitizer build of the fake producer: a workout through harvesters in a subprocess shows no memory
error and no leak whose allocation comes from the producer."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.genicam, pytest.mark.slow]

REPO_ROOT = Path(__file__).resolve().parents[2]

# Runs in the child: every path of the producer once (two devices, formats, trigger, faults, flush, reload).
WORKOUT = """
import ctypes
import sys
import numpy as np
from genicam.gentl import IoException, TimeoutException
from harvesters.core import Harvester
from daemon.cameras.pattern import radial_sine
from tests.fixtures.producer import grab

pinned = ctypes.CDLL(sys.argv[1])  # keeps the library mapped after GCCloseLib, so LSan can name its frames
h = Harvester()
h.add_file(sys.argv[1])
for cycle in range(3):
    h.update()
    left = h.create({"serial_number": "FAKE0001"})
    right = h.create({"serial_number": "FAKE0002"})
    for ia, fmt, dtype in ((left, "Mono16", np.uint16), (right, "Mono12", np.uint16)):
        nm = ia.remote_device.node_map
        nm.Width.value, nm.Height.value, nm.PixelFormat.value = 200 + cycle, 100, fmt
        nm.AcquisitionFrameRate.value = 500.0
        ia.num_buffers = 2
        ia.start()
    for _ in range(5):
        frame = grab(left)
        assert (frame.image == radial_sine(frame.frame_id, 100, 200 + cycle, np.uint16)).all()
        grab(right)
    left.stop()
    nm = left.remote_device.node_map
    nm.TriggerMode.value = "On"
    nm.FaultIncompleteEvery.value = 2
    left.start()
    for _ in range(4):
        nm.TriggerSoftware.execute()
        left.try_fetch(timeout=0.5)
    left.stop()
    nm.TriggerMode.value = "Off"
    nm.FaultIncompleteEvery.value = 0
    nm.FaultStallAfter.value, nm.FaultStallMs.value = 1, 50
    nm.FaultDisconnectAfter.value = 4
    left.start()
    while True:
        try:
            grab(left, timeout_s=0.3)
        except TimeoutException:
            break
    try:
        left.destroy()
    except IoException:
        left.destroy()
    right.destroy()  # while acquiring
h.reset()
print("workout done")
"""


# A deliberate overflow through the producer (GCGetLastError told the 4-byte buffer holds 100): proves that the
# child really runs under ASan, so a clean workout means something.
OVERFLOW = """
import ctypes, sys
lib = ctypes.CDLL(sys.argv[1])
lib.TLOpen(None)  # fails (not initialised) and sets the last error text
text = ctypes.create_string_buffer(4)
lib.GCGetLastError(ctypes.byref(ctypes.c_int32()), text, ctypes.byref(ctypes.c_size_t(100)))
"""


def gcc_library(name: str) -> str:
    proc = subprocess.run(["gcc", f"-print-file-name={name}"], capture_output=True, text=True, check=True, timeout=30)
    path = proc.stdout.strip()
    if not os.path.isabs(path):
        pytest.fail(f"gcc does not know {name} (got {path!r}); install it for the ASan build", pytrace=False)
    return path


def run_under_asan(script: str, cti: Path, *, detect_leaks: bool) -> subprocess.CompletedProcess[str]:
    # libstdc++ is preloaded too (by soname: its dev symlink comes with g++, not gcc), else ASan cannot
    # intercept the C++ exceptions GenApi throws.
    env = {
        **os.environ,
        "LD_PRELOAD": f"{gcc_library('libasan.so')} libstdc++.so.6",
        "ASAN_OPTIONS": f"detect_leaks={int(detect_leaks)}:exitcode=86",
        "PYTHONPATH": str(REPO_ROOT),
    }
    for name in ("FAKE_GENTL_DEVICES", "FAKE_GENTL_DISCONNECT_AFTER", "FAKE_GENTL_INCOMPLETE_EVERY"):
        env.pop(name, None)
    return subprocess.run(
        [sys.executable, "-c", script, str(cti)],
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
        cwd=REPO_ROOT,
        env=env,
    )


def producer_leaks(stderr: str, cti: Path) -> list[str]:
    """LeakSanitizer reports whose allocation stack passes through the producer's sources (next to build/).

    CPython and GenApi leave plenty of memory unfreed at exit; only the producer's own leaks count.
    """
    sources = f"{cti.parent.parent}/"
    reports = re.split(r"\n(?=(?:Direct|Indirect) leak of )", stderr)
    return [r for r in reports[1:] if sources in r or cti.name in r]


def test_asan_build_reports_no_memory_errors_or_leaks(fake_cti_asan: Path) -> None:
    proc = run_under_asan(WORKOUT, fake_cti_asan, detect_leaks=True)
    assert "ERROR: AddressSanitizer" not in proc.stderr, proc.stderr[-4000:]
    assert "workout done" in proc.stdout, proc.stderr[-4000:]  # the exit code is LSan's, from CPython's leaks
    assert producer_leaks(proc.stderr, fake_cti_asan) == []


def test_asan_child_does_catch_an_overflow(fake_cti_asan: Path) -> None:
    proc = run_under_asan(OVERFLOW, fake_cti_asan, detect_leaks=False)
    assert "ERROR: AddressSanitizer: " in proc.stderr
    assert proc.returncode == 86
