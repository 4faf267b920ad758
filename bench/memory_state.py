"""The memory state every timed benchmark run starts from.

This kind of VM hands idle memory back to its host, so memory no process touched lately costs a host page fault on
first touch. A writer that goes through the page cache (tensorstore, zarr-python, acquire-zarr) then runs up to 2x
slower right after a writer that does not (acqd writes with ``O_DIRECT``) than after one that does: measured on
512x512 uint8 frames, tensorstore 526-599 MB/s right after acqd against 1020-1080 right after itself. So before
every timed run, :func:`warm_memory` has a child process touch and free as much memory as the run will fill,
the state of a workstation that has been running, the same for every system.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

GIB = 1 << 30


def meminfo_bytes(field: str) -> int | None:
    """``field`` of /proc/meminfo (``MemTotal``, ``MemAvailable``...) in bytes; None if it is not listed."""
    for line in Path("/proc/meminfo").read_text().splitlines():
        name, _, value = line.partition(":")
        if name == field:
            return int(value.split()[0]) * 1024
    return None


def available_bytes() -> int:
    """MemAvailable (bytes); 2 GiB where it cannot be read."""
    try:
        found = meminfo_bytes("MemAvailable")
    except (OSError, ValueError, IndexError):
        found = None
    return 2 * GIB if found is None else found


def warm_memory(nbytes: int) -> None:
    """Touch and free ``nbytes`` + 1 GiB (at most half of MemAvailable) in a child process."""
    size = min(nbytes + GIB, available_bytes() // 2)
    code = f"import numpy as np; np.ones({size}, dtype=np.uint8)"  # every page written, freed at exit
    subprocess.run([sys.executable, "-c", code], check=True)
