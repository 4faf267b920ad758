"""The machine's limits for a benchmark case, measured in the same run as the writers (each in its own process).

- ``limit-write``: sequential write bandwidth, durable. ``streams`` writer threads each write files of
  ``file_mib`` (the size of a shard) in 16 MiB ``pwrite`` calls from a reused page-aligned buffer, through the page
  cache or with ``O_DIRECT`` (``direct``); each file is fsynced on a thread of its own and its cached pages are
  then dropped (the fastest buffered pattern found on this kind of machine, see ``daemon/storage/file_store.py``).
  MB/s = bytes / wall time, every file fsynced. The run takes the best of 1 and 2 streams, buffered and direct.
- ``limit-compress``: Blosc level 1 (the case's codec) with byte shuffle and the block size acqd uses (the run gives
  tensorstore and zarr-python the same one; acquire-zarr has no such setting) on the case's own chunks (the same frames,
  cut into ``chunk_t x chunk_xy x chunk_xy`` chunks), on ``threads`` threads, each compressing into a reused output
  buffer through ``blosc_compress_ctx`` (numcodecs' bundled Blosc, one Blosc thread per call: the fastest way we
  know). MB/s counts input bytes; ``ratio`` is input / output bytes.

A writer can do no better than ``min(compress MB/s, write MB/s x ratio)`` if compression and writing overlap
perfectly on separate resources, and no better than the write MB/s uncompressed: that is the limit that binds.
"""

from __future__ import annotations

import mmap
import os
import queue
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

Spec = dict[str, Any]
Result = dict[str, Any]
PIECE = 16 << 20


def write_limit(spec: Spec) -> Result:
    folder = Path(spec["path"])
    folder.mkdir(parents=True, exist_ok=True)
    total, file_bytes, streams = spec["bytes"], spec["file_mib"] << 20, spec["streams"]
    mapping = mmap.mmap(-1, PIECE)  # page-aligned, as O_DIRECT needs
    data = np.frombuffer(mapping, np.uint8)
    data[:] = np.random.default_rng(0).integers(0, 256, PIECE, dtype=np.uint8)  # incompressible, already touched
    files = max(streams, total // file_bytes)
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | (os.O_DIRECT if spec.get("direct") else 0)
    start = time.perf_counter()
    threads = [threading.Thread(target=_write_files, args=(folder, s, files, streams, file_bytes, data, flags))
               for s in range(streams)]  # fmt: skip
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - start
    for name in os.listdir(folder):
        os.unlink(folder / name)
    return {"mb_s": files * file_bytes / seconds / 1e6, "seconds": seconds}


def _write_files(
    folder: Path, stream: int, files: int, streams: int, file_bytes: int, data: np.ndarray, flags: int
) -> None:
    pending: queue.Queue[int | None] = queue.Queue(maxsize=4)

    def sync() -> None:
        while (fd := pending.get()) is not None:
            os.fsync(fd)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            os.close(fd)

    syncer = threading.Thread(target=sync)
    syncer.start()
    try:
        for index in range(stream, files, streams):
            fd = os.open(folder / f"f{index}", flags, 0o644)
            for offset in range(0, file_bytes, PIECE):
                os.pwrite(fd, memoryview(data)[: min(PIECE, file_bytes - offset)], offset)
            pending.put(fd)
    finally:
        pending.put(None)
        syncer.join()


def _blosc() -> Any:
    """The engine's own entry point to Blosc (loaded and checked against numcodecs once per process)."""
    from daemon.storage.codec import blosc_compress_ctx

    fn = blosc_compress_ctx()
    if fn is None:
        raise RuntimeError("blosc_compress_ctx is not usable here: see the blosc_direct_* log line")
    return fn


def compress_limit(spec: Spec) -> Result:
    frames = np.load(spec["frames_file"])
    chunk_t, size = spec["chunk_t"], spec["size"]
    cxy = min(spec["chunk_xy"], size)
    tiles = [(y, x) for y in range(0, size, cxy) for x in range(0, size, cxy)]
    count = max(4, min(32, (512 << 20) // (chunk_t * cxy * cxy * frames.itemsize)))
    chunks = []
    for j in range(count):
        y, x = tiles[j % len(tiles)]
        chunk = np.zeros((chunk_t, cxy, cxy), frames.dtype)
        for t in range(chunk_t):
            tile = frames[(j * chunk_t + t) % len(frames), y : y + cxy, x : x + cxy]
            chunk[t, : tile.shape[0], : tile.shape[1]] = tile
        chunks.append(chunk)
    fn, cname, block = _blosc(), spec["codec"].encode(), spec["blocksize"]
    local = threading.local()

    def compress(chunk: np.ndarray) -> int:
        out = getattr(local, "out", None)
        if out is None:
            out = local.out = np.ones(chunk.nbytes + 16, np.uint8)
        n: int = fn(1, 1, chunk.itemsize, chunk.nbytes, chunk.ctypes.data, out.ctypes.data, out.nbytes, cname, block, 1)
        return n

    with ThreadPoolExecutor(spec["threads"]) as pool:
        list(pool.map(compress, chunks[: spec["threads"]]))  # warm up: output buffers touched
        start = time.perf_counter()
        sizes = list(pool.map(compress, chunks * 2))
        seconds = time.perf_counter() - start
    raw = 2 * sum(c.nbytes for c in chunks)
    return {"mb_s": raw / seconds / 1e6, "ratio": raw / sum(sizes), "seconds": seconds}


LIMITS = {"limit-write": write_limit, "limit-compress": compress_limit}
