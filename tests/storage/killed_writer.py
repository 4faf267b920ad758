"""Kill a writer child process with SIGKILL once it reported enough stored frames (the crash tests' common step).

The child prints ``stored N`` lines on stdout as its stream's ``frames_stored`` moves.
"""

from __future__ import annotations

import signal
import subprocess
import time


def kill_when_stored(proc: subprocess.Popen[str], min_stored: int, deadline: float) -> int:
    """Read ``proc``'s reports until one says ``min_stored`` frames are stored (before ``deadline``, a monotonic
    time), then SIGKILL it and check it died of that; the last count it reported."""
    reported = 0
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.startswith("stored "):
                reported = int(line.split()[1])
            if reported >= min_stored:
                break
            assert time.monotonic() < deadline, "the writer did not store enough frames in time"
    finally:
        proc.send_signal(signal.SIGKILL)
        _, stderr = proc.communicate(timeout=10)
    assert proc.returncode == -signal.SIGKILL, stderr[-3000:]
    return reported
