"""Benchmark: acqd's storage engine against acquire-zarr 0.10, same workload, same run, interleaved.

Both append the same frames one at a time into a sharded Zarr v3 store and close it; every file is fsynced
before the clock stops (acqd does it itself; acquire-zarr's files are fsynced by this script, inside its timing).
After each system's last repetition, a separate process reads the store back with zarr-python and compares every
value (this process never imports zarr: importing it changes Blosc's threading for the whole process).

Usage (from the repository root):  .venv/bin/python bench/engine.py [--frames 128 --size 2048 --reps 3 ...]
Prints one line per run, then medians in MB/s (frame bytes appended / wall time) and the ratio acqd / acquire-zarr.

``--multiscale mean`` (or decimate, min, max) adds a pyramid on both sides (acqd's ``downsampling_method``,
acquire-zarr's ``DownsamplingMethod``), ``--max-levels N`` caps it (levels including level 0; acquire-zarr gets
N - 1, its count of downsampled levels). MB/s still counts level-0 bytes only; the verification then also compares
the two pyramids level by level (shapes, and how many values differ: acquire-zarr's rounding of a mean may differ).
"""

from __future__ import annotations

import argparse
import gc
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # runnable without an editable install
    sys.path.insert(0, str(REPO))

from bench.memory_state import warm_memory  # noqa: E402
from bench.systems import fsync_tree  # noqa: E402
from daemon.log import configure  # noqa: E402
from daemon.storage import (  # noqa: E402
    ArraySettings,
    CompressionSettings,
    Dimension,
    StreamSettings,
    ZarrStream,
)

CODECS = {"none": None, "lz4": "blosc-lz4", "zstd": "blosc-zstd"}
DISTINCT_FRAMES = 16


def make_frames(n: int, size: int, dtype: str, seed: int = 0) -> np.ndarray:
    """``n`` microscope-like frames: a moving blurred pattern plus Poisson noise, ~12 useful bits."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size].astype(np.float32) / size
    frames = np.empty((n, size, size), dtype=dtype)
    top = 4000 if np.dtype(dtype).itemsize > 1 else 200
    for k in range(n):
        phase = 2 * np.pi * k / n
        signal = (np.sin(12 * x + phase) * np.cos(9 * y - phase) + 1) * 0.5 * top * 0.8 + top * 0.1
        frames[k] = rng.poisson(signal).clip(0, np.iinfo(dtype).max)
    return frames


def frame_source(args: argparse.Namespace) -> np.ndarray:
    return make_frames(DISTINCT_FRAMES, args.size, args.dtype)


def run_acqd(path: Path, frames: np.ndarray, args: argparse.Namespace) -> None:
    codec = CODECS[args.codec]
    compression = None if codec is None else CompressionSettings(codec, args.level, "byte")
    dims = [
        Dimension("t", "time", 0, args.chunk_t, args.shard_t),
        Dimension("y", "space", args.size, args.chunk_xy, args.shard_xy),
        Dimension("x", "space", args.size, args.chunk_xy, args.shard_xy),
    ]
    method = None if args.multiscale == "none" else args.multiscale
    array = ArraySettings(
        data_type=args.dtype,
        dimensions=dims,
        compression=compression,
        downsampling_method=method,
        max_levels=args.max_levels if method else None,
    )
    settings = StreamSettings(store_path=str(path), arrays=[array], max_threads=args.threads, overwrite=True)
    stream = ZarrStream(settings)
    for k in range(args.frames):
        stream.append(frames[k % DISTINCT_FRAMES])
    stream.close()
    fsync_tree(path)  # already durable: the same walk as for acquire-zarr, for symmetry


def run_acquire_zarr(path: Path, frames: np.ndarray, args: argparse.Namespace) -> None:
    import acquire_zarr as aqz

    def dim(name: str, kind: Any, size: int, chunk: int, shard: int) -> Any:
        return aqz.Dimension(name=name, kind=kind, array_size_px=size, chunk_size_px=chunk, shard_size_chunks=shard)

    dims = [
        dim("t", aqz.DimensionType.TIME, 0, args.chunk_t, args.shard_t),
        dim("y", aqz.DimensionType.SPACE, args.size, args.chunk_xy, args.shard_xy),
        dim("x", aqz.DimensionType.SPACE, args.size, args.chunk_xy, args.shard_xy),
    ]
    codec = {"lz4": aqz.CompressionCodec.BLOSC_LZ4, "zstd": aqz.CompressionCodec.BLOSC_ZSTD}.get(args.codec)
    compression = None
    if codec is not None:
        compression = aqz.CompressionSettings(
            compressor=aqz.Compressor.BLOSC1, codec=codec, level=args.level, shuffle=1
        )
    array = aqz.ArraySettings(dimensions=dims, data_type=np.dtype(args.dtype), compression=compression)
    if args.multiscale != "none":
        array.downsampling_method = getattr(aqz.DownsamplingMethod, args.multiscale.upper())
        array.max_levels = 0 if args.max_levels is None else args.max_levels - 1  # 0: no cap
    settings = aqz.StreamSettings(store_path=str(path), arrays=[array], max_threads=args.threads, overwrite=True)
    stream = aqz.ZarrStream(settings)
    for k in range(args.frames):
        stream.append(frames[k % DISTINCT_FRAMES])
    stream.close()
    fsync_tree(path)


SYSTEMS: dict[str, tuple[Callable[[Path, np.ndarray, argparse.Namespace], None], str]] = {
    "acqd": (run_acqd, "0"),  # acqd writes an OME image group; the array is level "0"
    "acquire-zarr": (run_acquire_zarr, ""),
}

VERIFY = """
import sys, numpy as np, zarr
sys.path.insert(0, {repo!r})
from bench.engine import make_frames, DISTINCT_FRAMES
frames = make_frames(DISTINCT_FRAMES, {size}, {dtype!r})
array = zarr.open_array({path!r}, path={array_path!r}, mode="r")
assert array.shape == ({n}, {size}, {size}), array.shape
for start in range(0, {n}, 16):
    block = array[start:start + 16]
    for i, got in enumerate(block):
        if not np.array_equal(got, frames[(start + i) % DISTINCT_FRAMES]):
            sys.exit(f"frame {{start + i}} differs")
print("ok")
"""


COMPARE_LEVELS = """
import numpy as np, zarr
ours, theirs = zarr.open_group({ours!r}, mode="r"), zarr.open_group({theirs!r}, mode="r")
names = sorted(set(ours.array_keys()) | set(theirs.array_keys()), key=int)
for name in names:
    if name not in ours or name not in theirs:
        print(f"level {{name}}: only in {{'acqd' if name in ours else 'acquire-zarr'}}")
        continue
    a, b = ours[name], theirs[name]
    if a.shape != b.shape:
        print(f"level {{name}}: shapes differ, acqd {{a.shape}} acquire-zarr {{b.shape}}")
        continue
    differ = off = 0
    for start in range(0, a.shape[0], 16):
        x, y = np.asarray(a[start:start + 16], dtype=np.int64), np.asarray(b[start:start + 16], dtype=np.int64)
        differ += int(np.count_nonzero(x != y))
        off = max(off, int(np.abs(x - y).max(initial=0)))
    print(f"level {{name}} {{a.shape}}: {{differ / a.size:.2%}} of values differ (at most by {{off}})")
"""


def compare_levels(out: Path) -> str:
    code = COMPARE_LEVELS.format(ours=str(out / "acqd.zarr"), theirs=str(out / "acquire-zarr.zarr"))
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    return result.stdout.strip() or result.stderr.strip().splitlines()[-1]


def verify(path: Path, array_path: str, args: argparse.Namespace) -> str:
    code = VERIFY.format(
        repo=str(REPO), size=args.size, dtype=args.dtype, path=str(path), array_path=array_path, n=args.frames
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    return result.stdout.strip() or result.stderr.strip().splitlines()[-1]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=96)
    parser.add_argument("--size", type=int, default=2048, help="frame height and width (px)")
    parser.add_argument("--dtype", default="uint16", choices=["uint8", "uint16"])
    parser.add_argument("--codec", default="lz4", choices=sorted(CODECS))
    parser.add_argument("--level", type=int, default=1)
    parser.add_argument("--chunk-t", type=int, default=32)
    parser.add_argument("--chunk-xy", type=int, default=512)
    parser.add_argument("--shard-t", type=int, default=1)
    parser.add_argument("--shard-xy", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--out", type=Path, default=None, help="folder for the stores (default: a temporary one)")
    parser.add_argument("--no-verify", action="store_true")
    parser.add_argument("--multiscale", default="none", choices=["none", "mean", "decimate", "min", "max"])
    parser.add_argument("--max-levels", type=int, default=None, help="pyramid levels including level 0")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    configure("console", level="WARNING", stream=sys.stderr)
    frames = frame_source(args)
    nbytes = args.frames * frames[0].nbytes
    out = args.out or Path(tempfile.mkdtemp(prefix="acqd-bench-"))
    out.mkdir(parents=True, exist_ok=True)
    print(
        f"workload: {args.frames} frames {args.size}x{args.size} {args.dtype} ({nbytes / 1e6:.0f} MB), v3 sharded, "
        f"chunks {args.chunk_t}x{args.chunk_xy}x{args.chunk_xy}, shards {args.shard_t}x{args.shard_xy}x"
        f"{args.shard_xy} chunks, codec {args.codec} level {args.level}, {args.threads} threads, in {out}"
        + ("" if args.multiscale == "none" else f", pyramid {args.multiscale} (max_levels {args.max_levels})")
    )
    print("timing: append every frame + close + fsync of every file; before each run, memory warmed (memory_state.py)")
    results: dict[str, list[float]] = {name: [] for name in SYSTEMS}
    try:
        for rep in range(args.reps):
            order = list(SYSTEMS) if rep % 2 == 0 else list(reversed(SYSTEMS))
            for name in order:
                run, _ = SYSTEMS[name]
                path = out / f"{name}.zarr"
                shutil.rmtree(path, ignore_errors=True)
                gc.collect()
                warm_memory(nbytes)
                start = time.perf_counter()
                run(path, frames, args)
                seconds = time.perf_counter() - start
                results[name].append(nbytes / seconds / 1e6)
                print(f"rep {rep + 1} {name:>13}: {results[name][-1]:8.1f} MB/s  ({seconds:.2f} s)", flush=True)
        if not args.no_verify:
            for name, (_, array_path) in SYSTEMS.items():
                array_path = "0" if args.multiscale != "none" else array_path  # both write an OME image then
                print(f"verify {name:>11}: {verify(out / f'{name}.zarr', array_path, args)}")
            if args.multiscale != "none":
                print(compare_levels(out))
    finally:
        if args.out is None:
            shutil.rmtree(out, ignore_errors=True)
    ours, theirs = statistics.median(results["acqd"]), statistics.median(results["acquire-zarr"])
    print(f"\n| system | median MB/s |\n|---|---|\n| acqd | {ours:.1f} |\n| acquire-zarr 0.10 | {theirs:.1f} |")
    print(f"ratio acqd / acquire-zarr: {ours / theirs:.2f}")


if __name__ == "__main__":
    main()
