"""The live progress line of ``acqd run`` on a terminal: frames, rate, MB/s, drops and queue depth, redrawn in place.

Design notes:
- Only on a TTY (the caller checks ``isatty``); logs go to stdout, the progress line to stderr, so redirected
  output never holds carriage returns.
- Rates are computed here from consecutive :class:`~daemon.run_manager.RunStatus` snapshots (frames delivered and
  bytes read; the run's own rates move only every ``metrics_interval_s``), over the last few seconds.
- The line is cleared (``\\r`` + erase to end of line) before each redraw and when closed.
"""

from __future__ import annotations

import collections
import time
from typing import TextIO

from daemon.run_manager import RunStatus

CLEAR = "\r\x1b[2K"
WINDOW_S = 3.0


def format_progress(status: RunStatus, elapsed_s: float, fps: float, mb_per_s: float) -> str:
    """``acqd run  12.3 s  1234 frames (1200 stored)  99.5 fps  52.1 MB/s  drops 0  queue 3 (6.0 MB)``."""
    counts = status.counts
    drops = sum(status.drops.values())
    queued = counts.get("queue_frames", 0)
    queue_mb = counts.get("queue_bytes", 0) / 1e6
    return (
        f"acqd run {status.state.value:<8} {elapsed_s:7.1f} s  {counts.get('frames_delivered', 0)} frames "
        f"({counts.get('frames_stored', 0)} stored)  {fps:6.1f} fps  {mb_per_s:7.1f} MB/s  drops {drops}  "
        f"queue {queued} ({queue_mb:.1f} MB)"
    )


class ProgressLine:
    """Redraws one status line on ``stream`` (a terminal)."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._start = time.monotonic()
        self._history: collections.deque[tuple[float, int, int]] = collections.deque()
        self._shown = False

    def update(self, status: RunStatus) -> None:
        now = time.monotonic()
        frames = status.counts.get("frames_delivered", 0)
        nbytes = status.counts.get("bytes_read", 0)
        self._history.append((now, frames, nbytes))
        while len(self._history) > 2 and now - self._history[0][0] > WINDOW_S:
            self._history.popleft()
        then, frames_then, bytes_then = self._history[0]
        span = now - then
        fps = (frames - frames_then) / span if span > 0 else 0.0
        mb_per_s = (nbytes - bytes_then) / span / 1e6 if span > 0 else 0.0
        line = format_progress(status, now - self._start, fps, mb_per_s)
        self._stream.write(CLEAR + line)
        self._stream.flush()
        self._shown = True

    def close(self) -> None:
        """Erase the line (idempotent)."""
        if self._shown:
            self._stream.write(CLEAR)
            self._stream.flush()
            self._shown = False
