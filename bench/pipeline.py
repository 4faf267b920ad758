"""Benchmark: the whole pipeline (camera -> ZeroMQ -> storage worker -> disk) against the storage engine alone.

Same frames, same store settings (Zarr v3, sharded, Blosc lz4 level 1 byte shuffle, ``--threads`` writer threads),
measured in one process run so the figures are comparable:

- ``engine alone``: ``ZarrStream.append`` in this process on frames of the reference radial sine, pre-rendered
  (the ceiling: no camera, no socket, no second process);
- ``simulated camera alone``: the simulated camera drawing the same frames as fast as it can (no storage);
- ``simulated -> null worker``: that camera through a run's camera reader and frame sender (frame ring included)
  to a worker that stores nothing: what the pipeline costs on top of the engine (its CPU ms/frame);
- ``simulated -> pipeline``: an ``acqd`` Run of that camera free-running (``frame_period_s: 0``) with a blocking
  queue (a simulated camera may wait), so every frame is stored: the pipeline's sustained rate;
- ``fake GenTL alone`` / ``fake GenTL -> pipeline`` (unless ``--no-genicam``): the fake producer through harvesters
  at ``--genicam-fps``, read alone, then through a Run in drop mode (a real camera never waits): frames stored per
  second, and the frames lost on the way (camera gaps, queue full).

Each pipeline clock starts when ``Run.start()`` returns (frames flow; the worker's start-up is reported apart) and
stops when the run has ended: the worker finalised the store (fsynced) and the books are settled. Rates are frames
(and frame MB) stored per wall-clock second. The machine is shared (2 cores): read ratios, not absolutes.

Usage (from the repository root):  .venv/bin/python bench/pipeline.py [--frames 200 --size 1024 --reps 1 ...]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # runnable without an editable install
    sys.path.insert(0, str(REPO))

from daemon.cameras.factory import create_camera  # noqa: E402
from daemon.cameras.settings import (  # noqa: E402
    CameraSettings,
    DeviceSelector,
    GenicamCameraSettings,
    SimulatedCameraSettings,
)
from daemon.cameras.simulated import PHASES, render_radial_sine  # noqa: E402
from daemon.ipc.endpoint import PrivateIpcFolder  # noqa: E402
from daemon.ipc.frame_queue import QueueMode  # noqa: E402
from daemon.ipc.frame_sender import FrameSender  # noqa: E402
from daemon.ipc.stream_settings import SenderSettings  # noqa: E402
from daemon.log import configure  # noqa: E402
from daemon.profile import parse_profile  # noqa: E402
from daemon.run import Run  # noqa: E402
from daemon.run_books import CameraBooks  # noqa: E402
from daemon.run_camera import CameraReader  # noqa: E402
from daemon.storage import ArraySettings, CompressionSettings, Dimension, StreamSettings, ZarrStream  # noqa: E402

DISTINCT_FRAMES = 64


def dimensions(args: argparse.Namespace) -> list[dict[str, Any]]:
    chunk_xy = min(args.chunk_xy, args.size)
    return [
        {"name": "t", "type": "time", "array_size_px": 0, "chunk_size_px": args.chunk_t, "shard_size_chunks": 1},
        {"name": "y", "type": "space", "array_size_px": args.size, "chunk_size_px": chunk_xy, "shard_size_chunks": 2},
        {"name": "x", "type": "space", "array_size_px": args.size, "chunk_size_px": chunk_xy, "shard_size_chunks": 2},
    ]


def storage(store: str, args: argparse.Namespace) -> dict[str, Any]:
    compression = {"codec": "blosc-lz4", "level": 1, "shuffle": "byte"}
    return {"store": store, "version": 3, "overwrite": True, "max_threads": args.threads, "compression": compression}


def cpu_s() -> float:
    """CPU seconds (user + system) of this process and of its reaped children (the storage workers) so far."""
    me, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + children.ru_utime + children.ru_stime


def process_cpu_s(pid: int | None) -> float:
    """CPU seconds a live process used so far (from /proc/PID/stat: utime + stime), 0 if unknown."""
    if pid is None:
        return 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def engine_alone(root: Path, args: argparse.Namespace, seconds: float | None = None) -> dict[str, float]:
    """The engine appending pre-rendered frames as fast as it can: ``args.frames`` of them, or for ``seconds``
    (then the store is deleted: a minute of frames is tens of GB)."""
    frames = [render_radial_sine(k, args.size, args.size, "uint16", 16) for k in range(DISTINCT_FRAMES)]
    dims = [Dimension(**d) for d in dimensions(args)]
    array = ArraySettings(data_type="uint16", dimensions=dims, compression=CompressionSettings("blosc-lz4", 1, "byte"))
    path = root / "engine.zarr"
    settings = StreamSettings(str(path), arrays=[array], max_threads=args.threads, overwrite=True)
    started, cpu = time.perf_counter(), cpu_s()
    stream = ZarrStream(settings)
    count = 0
    deadline = None if seconds is None else started + seconds
    while (count < args.frames) if deadline is None else (time.perf_counter() < deadline):
        stream.append(frames[count % DISTINCT_FRAMES])
        count += 1
    stream.close()
    elapsed = time.perf_counter() - started
    if seconds is not None:
        shutil.rmtree(path, ignore_errors=True)
    return {"fps": count / elapsed, "lost": 0.0, "cpu_ms": (cpu_s() - cpu) * 1e3 / count}


def camera_alone(settings: CameraSettings, frames: int) -> dict[str, float]:
    camera = create_camera(settings)
    camera.open()
    camera.configure()
    camera.start()
    try:
        read = 0
        started, cpu = time.perf_counter(), cpu_s()
        while read < frames:
            if camera.read(2.0) is not None:
                read += 1
        elapsed = time.perf_counter() - started
        used = cpu_s() - cpu
        stats = camera.stats
    finally:
        camera.close()
    lost = stats.frames_lost / max(stats.frames_delivered + stats.frames_lost, 1)
    return {"fps": frames / elapsed, "lost": lost, "cpu_ms": used * 1e3 / frames}


def link_alone(settings: CameraSettings, frames: int) -> dict[str, float]:
    """The camera's frames through a run's camera reader and frame sender (frame ring included) to a worker that
    stores nothing (``tests/ipc/worker_child.py``): the pipeline's cost without the storage engine. A blocking
    queue, so every frame goes through; CPU is this process's and the child's."""
    folder = PrivateIpcFolder()
    queue = 256 << 20
    sender = FrameSender(
        SenderSettings(folder.endpoint, run_id="bench", config={}, queue_max_bytes=queue, queue_mode=QueueMode.BLOCK)
    )
    child = subprocess.Popen(
        [sys.executable, "-m", "tests.ipc.worker_child", sender.endpoint, "--window-frames", "64"],
        cwd=REPO,
        stdout=subprocess.DEVNULL,  # its log lines would land in the table
    )
    camera = create_camera(settings)
    try:
        if sender.wait_for_worker(30) is None:
            raise RuntimeError("the null worker did not connect")
        camera.open()
        camera.configure()
        camera.start()
        books = CameraBooks("cam", "")
        reader = CameraReader(books, camera, sender, run_id="bench", frames_limit=frames, incomplete="drop")
        started, cpu = time.perf_counter(), cpu_s()
        reader.start()
        result = sender.finish(60.0) if reader.join(120.0) else None
        elapsed = time.perf_counter() - started
        child.wait(30)
        used = cpu_s() - cpu
    finally:
        camera.close()
        sender.close()
        if child.poll() is None:
            child.kill()
            child.wait()
        folder.close()
    if result is None or result.stats.frames_stored != frames:
        raise RuntimeError(f"the link lost frames: {None if result is None else result.stats}")
    return {"fps": frames / elapsed, "lost": 0.0, "cpu_ms": used * 1e3 / frames}


def through_pipeline(
    root: Path, camera: dict[str, Any], acquisition: dict[str, Any], args: argparse.Namespace
) -> dict[str, float]:
    doc = {
        "cameras": [{**camera, "dimensions": dimensions(args)}],
        "acquisition": {"frames": args.frames, "queue_bytes": args.queue, **acquisition},
        "storage": storage("pipeline.zarr", args),
    }
    profile = parse_profile(json.dumps(doc), "bench.yaml", root)
    run = Run(profile, log_level="WARNING")
    before = time.perf_counter()
    run.start()
    started, cpu = time.perf_counter(), cpu_s() + process_cpu_s(run.worker_pid)  # the worker's start-up excluded
    run.wait()
    elapsed = time.perf_counter() - started
    used = cpu_s() - cpu
    summary = run.summary or {}
    if summary.get("outcome") != "finished":
        raise RuntimeError(f"the run did not finish: {summary.get('errors')}")
    lost = sum(summary["dropped"].values())
    return {
        "fps": summary["stored"] / elapsed,
        "lost": lost / max(summary["delivered"], 1),
        "startup_s": started - before,
        "cpu_ms": used * 1e3 / max(summary["stored"], 1),
    }


def simulated_settings(args: argparse.Namespace) -> dict[str, Any]:
    """The bench's simulated camera: every phase of its pattern kept, so a frame costs the camera thread what a real
    camera's DMA costs the host (2048x2048 uint16 needs 1024 MiB, above the camera's default of 256)."""
    cache_mib = -(-PHASES * args.size * args.size * 2 // (1 << 20))  # rounded up
    return {
        "pattern": "radial_sine",
        "height": args.size,
        "width": args.size,
        "dtype": "uint16",
        "frame_period_s": 0,
        "phase_cache_mib": cache_mib,
    }


def genicam_settings(cti: Path, args: argparse.Namespace) -> dict[str, Any]:
    return {
        "producers": [str(cti)],
        "select": {"serial_number": "FAKE0001"},
        "width": args.size,
        "height": args.size,
        "pixel_format": "Mono16",
        "frame_rate_hz": args.genicam_fps,
        "exposure_time_us": 10.0,
        "num_buffers": 32,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=200)
    parser.add_argument("--size", type=int, default=1024, help="frame height and width (px), uint16")
    parser.add_argument("--chunk-t", type=int, default=32)
    parser.add_argument("--chunk-xy", type=int, default=512)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--queue", default="256 MiB", help="queue_bytes of the pipeline runs")
    parser.add_argument("--reps", type=int, default=1, help="repetitions, interleaved (medians are reported)")
    parser.add_argument("--genicam-fps", type=float, default=200.0, help="the fake producer's frame rate")
    parser.add_argument("--no-genicam", action="store_true", help="skip the fake GenTL producer rows")
    parser.add_argument("--out", type=Path, default=None, help="folder for the stores (default: a temporary one)")
    args = parser.parse_args(argv)
    configure("json", "WARNING")  # the runs' INFO events would drown the table

    root = args.out or Path(tempfile.mkdtemp(prefix="acqd-bench-"))
    root.mkdir(parents=True, exist_ok=True)
    frame_mb = args.size * args.size * 2 / 1e6
    print(
        f"{args.frames} frames of {args.size}x{args.size} uint16 ({frame_mb:.1f} MB), v3 sharded, blosc-lz4, "
        f"{args.threads} threads, {args.reps} rep(s); stores in {root}"
    )
    paths = bench_paths(root, args)
    figures: dict[str, list[dict[str, float]]] = {name: [] for name in paths}
    try:
        for rep in range(args.reps):
            for name, measure in paths.items():
                result = measure()
                figures[name].append(result)
                extra = f", start-up {result['startup_s']:.2f} s" if "startup_s" in result else ""
                print(f"  {rep + 1}: {name:<26} {result['fps']:8.1f} frames/s, lost {result['lost']:.1%}{extra}")
    finally:
        if args.out is None:
            shutil.rmtree(root, ignore_errors=True)
    print_table({name: median(runs) for name, runs in figures.items()}, frame_mb)


def median(runs: list[dict[str, float]]) -> dict[str, float]:
    return {key: statistics.median(r[key] for r in runs) for key in runs[0]}


def bench_paths(root: Path, args: argparse.Namespace) -> dict[str, Callable[[], dict[str, float]]]:
    """The measurements, by row name, in the order they run within a repetition."""
    sim = SimulatedCameraSettings(**simulated_settings(args))
    simulated = {"name": "sim", "driver": "simulated", "settings": simulated_settings(args)}
    paths: dict[str, Callable[[], dict[str, float]]] = {
        "engine alone": lambda: engine_alone(root, args),
        "simulated camera alone": lambda: camera_alone(sim, args.frames),
        "simulated -> null worker": lambda: link_alone(sim, args.frames),
        "simulated -> pipeline": lambda: through_pipeline(root, simulated, {"on_queue_full": "block"}, args),
    }
    if not args.no_genicam:
        from tests.fixtures.producer import build_fake_producer

        cti = build_fake_producer()
        settings = _genicam(cti, args)
        camera = {"name": "cam", "driver": "genicam", "settings": genicam_settings(cti, args)}
        paths["fake GenTL alone"] = lambda: camera_alone(settings, args.frames)
        paths["fake GenTL -> pipeline"] = lambda: through_pipeline(root, camera, {"on_queue_full": "drop"}, args)
    return paths


def _genicam(cti: Path, args: argparse.Namespace) -> GenicamCameraSettings:
    values = genicam_settings(cti, args)
    values["select"] = DeviceSelector(serial_number="FAKE0001")
    values["producers"] = tuple(values["producers"])
    return GenicamCameraSettings(**values)


def print_table(results: dict[str, dict[str, float]], frame_mb: float) -> None:
    engine = results["engine alone"]["fps"]
    print()
    print(f"{'path':<28}{'frames/s':>10}{'MB/s':>9}{'lost':>8}{'vs engine':>11}{'CPU ms/frame':>14}")
    for name, figures in results.items():
        fps = figures["fps"]
        row = f"{name:<28}{fps:>10.1f}{fps * frame_mb:>9.1f}{figures['lost']:>8.1%}{fps / engine:>11.2f}"
        print(f"{row}{figures['cpu_ms']:>14.2f}")
    if "simulated -> pipeline" in results and "simulated camera alone" in results:
        sim = results["simulated -> pipeline"]["fps"] / min(engine, results["simulated camera alone"]["fps"])
        print(f"\nsimulated pipeline / min(engine, camera alone) = {sim:.2f}")
    if "fake GenTL -> pipeline" in results and "fake GenTL alone" in results:
        gen = results["fake GenTL -> pipeline"]["fps"] / min(engine, results["fake GenTL alone"]["fps"])
        print(f"fake GenTL pipeline / min(engine, camera alone) = {gen:.2f}")


if __name__ == "__main__":
    main()
