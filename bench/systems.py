"""One benchmark run in its own process: a writer (acqd or a peer) or a limit, timed; prints one JSON line.

Usage (``bench/run.py`` calls it):  .venv/bin/python bench/systems.py '<json spec>'

Each system runs in a fresh process, so nothing leaks between them: importing zarr changes numcodecs' Blosc threads,
tensorstore and acquire-zarr start their own thread pools, and peak RSS (``VmHWM``) is the run's own. The frames come
from a ``.npy`` file the parent wrote (16 distinct frames, cycled), loaded before the clock starts.

The clock starts when the writer is created and stops after it closed and every file and folder of the store was
fsynced (acqd already fsyncs each object; the same walk runs for every system, inside the timing), so every result
is durable. What each system is given:
- ``acqd``: ``ZarrStream.append`` of one frame at a time (the API a camera loop uses);
- ``acquire-zarr`` 0.10: ``ZarrStream.append`` of one frame at a time (its API);
- ``tensorstore`` and ``zarr-python``: whole slabs of ``chunk_t`` frames (their best case: every write covers
  whole shards, so nothing is read back), filled by copying frames into one reused slab buffer, inside the clock.
  tensorstore may start writing slab k while slab k+1 is filled (its copy future); zarr-python writes each slab
  synchronously (its API).
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
Spec = dict[str, Any]
Result = dict[str, Any]


def rss_bytes(field: str) -> int:
    """``VmRSS`` or ``VmHWM`` (peak) of this process, in bytes."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    return 0


def fsync_tree(root: Path) -> None:
    for folder, _, names in os.walk(root):
        for name in names:
            fd = os.open(os.path.join(folder, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


class StoredWatcher:
    """Polls ``frames_stored`` of an acqd stream: when each frame became durable and claimed by the metadata."""

    def __init__(self, stream: Any, n: int, period_s: float = 0.005) -> None:
        self.stored_at = np.full(n, np.nan)
        self._stream = stream
        self._period = period_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        seen = 0
        while not self._stop.wait(self._period):
            stored = self._stream.frames_stored()
            if stored > seen:
                self.stored_at[seen:stored] = time.perf_counter()
                seen = stored

    def stop(self, closed_at: float) -> None:
        self._stop.set()
        self._thread.join()
        self.stored_at[np.isnan(self.stored_at)] = closed_at  # the rest is claimed by close's final metadata


def latency_summary(appended: np.ndarray, stored: np.ndarray, chunk_t: int, start: float) -> Result:
    """How long after arriving each frame was on disk, and how much of that exceeds its chunk's fill time."""
    latency = stored - appended
    arrived = np.concatenate([[start], appended[:-1]])  # a frame "arrives" when the previous append returned
    excess = np.empty_like(latency)
    for first in range(0, len(appended), chunk_t):
        last = min(first + chunk_t, len(appended)) - 1
        fill = appended[last] - arrived[first]
        excess[first : last + 1] = stored[first : last + 1] - arrived[first : last + 1] - fill
    return {
        "latency_p50_s": float(np.median(latency)),
        "latency_max_s": float(latency.max()),
        "excess_max_s": float(excess.max()),
    }


def acqd_stream(spec: Spec, path: Path) -> Any:
    """An acqd ``ZarrStream`` for ``spec`` (not yet opened: the caller times the constructor)."""
    sys.path.insert(0, str(REPO))
    from daemon.log import configure
    from daemon.storage import ArraySettings, CompressionSettings, Dimension, StreamSettings, ZarrStream

    configure("console", level="WARNING", stream=sys.stderr)
    codec = spec["codec"]
    compression = None if codec == "none" else CompressionSettings(f"blosc-{codec}", 1, "byte")
    size, chunk_t, chunk_xy, shard_xy = spec["size"], spec["chunk_t"], spec["chunk_xy"], spec["shard_xy"]
    dims = [
        Dimension("t", "time", 0, chunk_t, 1),
        Dimension("y", "space", size, chunk_xy, shard_xy),
        Dimension("x", "space", size, chunk_xy, shard_xy),
    ]
    array = ArraySettings(data_type=spec["dtype"], dimensions=dims, compression=compression)
    s3 = None
    if "s3" in spec:  # an S3 store (credentials in the environment); path is then an s3:// URL
        from daemon.storage.s3_settings import S3Settings

        s3 = S3Settings(**spec["s3"])
    settings = StreamSettings(
        store_path=str(spec.get("url", path)), arrays=[array], max_threads=spec["threads"], overwrite=True, s3=s3
    )

    def open_stream(discard: bool = False) -> Any:
        return ZarrStream(settings, store=discarding_store(path) if discard else None)

    return open_stream


def discarding_store(path: Path) -> Any:
    """A local store that deletes each shard once it is finalized (durable): a long run without filling the disk."""
    from daemon.storage.file_store import FileSink, FileStore

    class DiscardingSink(FileSink):
        def finalize(self) -> None:
            super().finalize()
            self.path.unlink(missing_ok=True)

    class DiscardingStore(FileStore):
        def open_sink(self, key: str) -> FileSink:
            return DiscardingSink(key, self.path(key))

    return DiscardingStore(path)


def run_acqd(spec: Spec, frames: np.ndarray, path: Path) -> Result:
    open_stream = acqd_stream(spec, path)
    n, period, chunk_t = spec["frames"], spec.get("period_s", 0.0), spec["chunk_t"]
    appended = np.empty(n)
    base = rss_bytes("VmRSS")
    start = time.perf_counter()
    stream = open_stream()
    budget = stream.max_buffer_bytes
    watcher = StoredWatcher(stream, n)
    for k in range(n):
        if period:
            delay = start + k * period - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
        stream.append(frames[k % len(frames)])
        appended[k] = time.perf_counter()
    stream.close()
    closed = time.perf_counter()
    watcher.stop(closed)
    if "s3" not in spec:
        fsync_tree(path)
    seconds = time.perf_counter() - start
    stats = stream.stats()
    result: Result = {"seconds": seconds, "base_rss": base, "append_p99_s": _p99_gap(appended, start)}
    result |= {"finalizer_peak": stats.objects_pending_peak, "stored_bytes": stats.bytes_written, "budget": budget}
    return result | latency_summary(appended, watcher.stored_at, chunk_t, start)


def run_acqd_long(spec: Spec, frames: np.ndarray, path: Path) -> Result:
    """acqd appending as fast as it can for ``seconds``: RSS sampled every 0.5 s (is memory flat?)."""
    open_stream = acqd_stream(spec, path)
    samples: list[tuple[float, int]] = []
    stop = threading.Event()
    start = time.perf_counter()

    def sample() -> None:
        while not stop.wait(0.5):
            samples.append((time.perf_counter() - start, rss_bytes("VmRSS")))

    base = rss_bytes("VmRSS")
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    stream = open_stream(discard=True)
    k = 0
    while time.perf_counter() - start < spec["seconds"]:
        stream.append(frames[k % len(frames)])
        k += 1
    peak_pending = stream.stats().objects_pending_peak
    stream.close()
    stop.set()
    sampler.join()
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "frames": k, "bytes": k * frames[0].nbytes, "base_rss": base, "rss": samples,
            "finalizer_peak": peak_pending, "budget": stream.max_buffer_bytes}  # fmt: skip


def _p99_gap(appended: np.ndarray, start: float) -> float:
    return float(np.percentile(np.diff(np.concatenate([[start], appended])), 99))


def run_acquire_zarr(spec: Spec, frames: np.ndarray, path: Path) -> Result:
    import acquire_zarr as aqz

    size, chunk_t, chunk_xy, shard_xy = spec["size"], spec["chunk_t"], spec["chunk_xy"], spec["shard_xy"]
    shard_xy = min(shard_xy, -(-size // chunk_xy))

    def dim(name: str, kind: Any, extent: int, chunk: int, shard: int) -> Any:
        return aqz.Dimension(name=name, kind=kind, array_size_px=extent, chunk_size_px=chunk, shard_size_chunks=shard)

    dims = [
        dim("t", aqz.DimensionType.TIME, 0, chunk_t, 1),
        dim("y", aqz.DimensionType.SPACE, size, min(chunk_xy, size), shard_xy),
        dim("x", aqz.DimensionType.SPACE, size, min(chunk_xy, size), shard_xy),
    ]
    codec = {"lz4": aqz.CompressionCodec.BLOSC_LZ4, "zstd": aqz.CompressionCodec.BLOSC_ZSTD}.get(spec["codec"])
    compression = None
    if codec is not None:
        compression = aqz.CompressionSettings(compressor=aqz.Compressor.BLOSC1, codec=codec, level=1, shuffle=1)
    array = aqz.ArraySettings(dimensions=dims, data_type=np.dtype(spec["dtype"]), compression=compression)
    settings = aqz.StreamSettings(store_path=str(path), arrays=[array], max_threads=spec["threads"], overwrite=True)
    n = spec["frames"]
    appended = np.empty(n)
    base = rss_bytes("VmRSS")
    start = time.perf_counter()
    stream = aqz.ZarrStream(settings)
    for k in range(n):
        stream.append(frames[k % len(frames)])
        appended[k] = time.perf_counter()
    stream.close()
    fsync_tree(path)
    return {"seconds": time.perf_counter() - start, "base_rss": base, "append_p99_s": _p99_gap(appended, start)}


def _blosc_v3(spec: Spec, itemsize: int) -> list[dict[str, Any]]:
    codecs: list[dict[str, Any]] = [{"name": "bytes", "configuration": {"endian": "little"}}]
    if spec["codec"] != "none":
        config = {
            "cname": spec["codec"],
            "clevel": 1,
            "shuffle": "shuffle",
            "typesize": itemsize,
            "blocksize": spec["blocksize"],
        }
        codecs.append({"name": "blosc", "configuration": config})
    return codecs


def _shapes(spec: Spec) -> tuple[tuple[int, int, int], tuple[int, int, int], tuple[int, int, int]]:
    """(array shape, shard shape, chunk shape) of a slab writer."""
    size, chunk_t = spec["size"], spec["chunk_t"]
    chunk_xy = min(spec["chunk_xy"], size)
    shard_xy = min(chunk_xy * spec["shard_xy"], -(-size // chunk_xy) * chunk_xy)
    return (spec["frames"], size, size), (chunk_t, shard_xy, shard_xy), (chunk_t, chunk_xy, chunk_xy)


def _fill(slab: np.ndarray, frames: np.ndarray, first: int) -> int:
    for i in range(len(slab)):
        slab[i] = frames[(first + i) % len(frames)]
    return len(slab)


def run_tensorstore(spec: Spec, frames: np.ndarray, path: Path) -> Result:
    import tensorstore as ts

    shape, shard, chunk = _shapes(spec)
    dtype = np.dtype(spec["dtype"])
    sharding = {
        "name": "sharding_indexed",
        "configuration": {
            "chunk_shape": list(chunk),
            "codecs": _blosc_v3(spec, dtype.itemsize),
            "index_codecs": [{"name": "bytes", "configuration": {"endian": "little"}}, {"name": "crc32c"}],
            "index_location": "end",
        },
    }
    metadata = {
        "shape": list(shape),
        "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": list(shard)}},
        "codecs": [sharding],
        "data_type": dtype.name,
        "fill_value": 0,
    }
    base = rss_bytes("VmRSS")
    start = time.perf_counter()
    kvstore = {"driver": "file", "path": str(path)}
    store = ts.open({"driver": "zarr3", "kvstore": kvstore, "metadata": metadata}, create=True, delete_existing=True)
    store = store.result()
    slab = np.empty((shard[0], *shape[1:]), dtype)
    commits = []
    for first in range(0, shape[0], shard[0]):
        n = _fill(slab[: min(shard[0], shape[0] - first)], frames, first)
        future = store[first : first + n].write(slab[:n])
        future.copy.result()  # tensorstore holds its own copy now: the slab may be refilled
        commits.append(future.commit)
    for commit in commits:
        commit.result()
    fsync_tree(path)
    return {"seconds": time.perf_counter() - start, "base_rss": base}


def run_zarr_python(spec: Spec, frames: np.ndarray, path: Path) -> Result:
    import zarr
    from zarr.codecs import BloscCodec

    shape, shard, chunk = _shapes(spec)
    dtype = np.dtype(spec["dtype"])
    compressors = None if spec["codec"] == "none" else BloscCodec(cname=spec["codec"], clevel=1, shuffle="shuffle")
    base = rss_bytes("VmRSS")
    start = time.perf_counter()
    array = zarr.create_array(
        store=str(path),
        shape=shape,
        chunks=chunk,
        shards=shard,
        dtype=dtype,
        compressors=compressors,
        fill_value=0,
        zarr_format=3,
        overwrite=True,
    )
    slab = np.empty((shard[0], *shape[1:]), dtype)
    for first in range(0, shape[0], shard[0]):
        n = _fill(slab[: min(shard[0], shape[0] - first)], frames, first)
        array[first : first + n] = slab[:n]
    fsync_tree(path)
    return {"seconds": time.perf_counter() - start, "base_rss": base}


SYSTEMS: dict[str, Callable[[Spec, np.ndarray, Path], Result]] = {
    "acqd": run_acqd,
    "acqd-long": run_acqd_long,
    "acquire-zarr": run_acquire_zarr,
    "tensorstore": run_tensorstore,
    "zarr-python": run_zarr_python,
}


def main() -> None:
    spec: Spec = json.loads(sys.argv[1])
    kind = spec["system"]
    if kind.startswith("limit-"):
        from bench.limits import LIMITS

        result = LIMITS[kind](spec)
    else:
        frames = np.load(spec["frames_file"])
        result = SYSTEMS[kind](spec, frames, Path(spec["path"]))
    result["peak_rss"] = rss_bytes("VmHWM")
    print(json.dumps(result))


if __name__ == "__main__":
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    main()
