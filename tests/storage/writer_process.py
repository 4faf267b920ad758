"""A writer run in a subprocess by the fault tests: ``python -m tests.storage.writer_process MODE STORE [VERSION]``.

Modes:
- ``disk-full``: ignores SIGXFSZ and limits file sizes (RLIMIT_FSIZE) so that a shard outgrowing the limit fails
  with EFBIG, then streams until the engine refuses; prints one JSON line describing what each call raised.
- ``forever``: streams frames without end, printing ``stored N`` after each batch, until it is killed.
- ``forever-pyramid-tczyx`` / ``forever-pyramid-zyx``: the same with a 'mean' pyramid (noisy frames) on the 5-d
  layout of ``forever`` or on a z-stack appended along z (a space axis, halved on every level).

Frame ``k`` is :func:`frame` ``(k)``, so the parent can check every value the store claims.
"""

from __future__ import annotations

import dataclasses
import json
import resource
import signal
import sys
from typing import Any

import numpy as np
import numpy.typing as npt

from daemon.errors import StorageError, StreamClosedError
from daemon.storage import ArraySettings, CompressionSettings, Dimension, StreamSettings, ZarrStream

HEIGHT, WIDTH = 64, 48
FSIZE_LIMIT = 60_000
COMPRESSIBLE_FRAMES = 32


def frame(k: int, noisy: bool = False) -> npt.NDArray[np.uint16]:
    """Frame ``k``: a ramp shifted by ``k`` (compressible), or seeded noise (incompressible) when ``noisy``."""
    if noisy:
        return np.random.default_rng(k).integers(0, 2**16, size=(HEIGHT, WIDTH), dtype=np.uint16)
    ramp = np.arange(HEIGHT * WIDTH, dtype=np.uint32).reshape(HEIGHT, WIDTH) // 64
    return ((ramp + k) % 65536).astype(np.uint16)


def disk_full_settings(store: str) -> StreamSettings:
    dims = [
        Dimension("t", "time", 0, 8, 2),
        Dimension("y", "space", HEIGHT, HEIGHT, 1),
        Dimension("x", "space", WIDTH, WIDTH, 1),
    ]
    array = ArraySettings(data_type="uint16", dimensions=dims, compression=CompressionSettings("blosc-lz4", 1))
    return StreamSettings(store_path=store, arrays=[array], max_threads=2)


def forever_settings(store: str, version: int) -> StreamSettings:
    shard = 2 if version == 3 else None
    dims = [
        Dimension("t", "time", 0, 2, shard),
        Dimension("c", "channel", 2, 1, shard),
        Dimension("z", "space", 3, 2, shard),
        Dimension("y", "space", HEIGHT, 32, shard),
        Dimension("x", "space", WIDTH, 32, shard),
    ]
    array = ArraySettings(data_type="uint16", dimensions=dims, compression=CompressionSettings("blosc-zstd", 1))
    return StreamSettings(store_path=store, version=version, arrays=[array], max_threads=2)


def pyramid_settings(store: str, version: int, layout: str) -> StreamSettings:
    """``forever``'s 5-d layout, or a z-stack appended along z, with a 'mean' pyramid."""
    if layout == "tczyx":
        array = forever_settings(store, version).arrays[0]
        return StreamSettings(
            store_path=store,
            version=version,
            arrays=[dataclasses.replace(array, downsampling_method="mean")],
            max_threads=2,
        )
    shard = 2 if version == 3 else None
    dims = [
        Dimension("z", "space", 0, 2, shard),
        Dimension("y", "space", HEIGHT, 16, shard),
        Dimension("x", "space", WIDTH, 16, None if shard is None else 1),
    ]
    array = ArraySettings(data_type="uint16", dimensions=dims, downsampling_method="mean")
    return StreamSettings(store_path=store, version=version, arrays=[array], max_threads=2)


def outcome(call: Any) -> str:
    try:
        call()
    except StreamClosedError as exc:
        return f"StreamClosedError: {exc}"
    except StorageError as exc:
        return f"StorageError: {exc}"
    return "ok"


def disk_full(store: str) -> None:
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (FSIZE_LIMIT, FSIZE_LIMIT))
    stream = ZarrStream(disk_full_settings(store))
    report: dict[str, Any] = {"first_error": None}
    for k in range(2000):
        result = outcome(lambda k=k: stream.append(frame(k, noisy=k >= COMPRESSIBLE_FRAMES)))
        if result != "ok":
            report["first_error"] = result
            report["frames_appended"] = stream.frames_appended()
            report["frames_stored"] = stream.frames_stored()
            break
    report["next_append"] = outcome(lambda: stream.append(frame(0)))
    report["close"] = outcome(stream.close)
    report["close_again"] = outcome(stream.close)
    print(json.dumps(report), flush=True)


def forever(settings: StreamSettings, noisy: bool = False) -> None:
    """Stream without end; report level 0's stored frames (0 until every level of a pyramid claims some)."""
    stream = ZarrStream(settings)
    k = 0
    while True:
        for _ in range(6):
            stream.append(frame(k, noisy))
            k += 1
        stored = stream.frames_stored() if all(stream.frames_stored_by_level()) else 0
        print(f"stored {stored} appended {k}", flush=True)


def main(argv: list[str]) -> None:
    mode, store = argv[0], argv[1]
    if mode == "disk-full":
        disk_full(store)
    elif mode == "forever":
        forever(forever_settings(store, int(argv[2])))
    elif mode.startswith("forever-pyramid-"):
        forever(pyramid_settings(store, int(argv[2]), mode.removeprefix("forever-pyramid-")), noisy=True)
    else:
        raise SystemExit(f"unknown mode {mode!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
