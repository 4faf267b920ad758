"""Benchmark: frames/s that harvesters delivers from the fake GenTL producer (fetch + copy out of the buffer).

The producer free-runs (AcquisitionFrameRate at its maximum, ExposureTime at its minimum), so it draws frames as
fast as it can; frames it cannot place because every buffer is still with the consumer are dropped and counted
(FakeDroppedFrames). Each fetched frame is copied into a preallocated numpy array, as acqd must do before the
buffer is re-queued. As a ceiling, the same copy is timed alone on a numpy array of the same size.

Usage (from the repository root):  .venv/bin/python bench/producer_rate.py [--seconds 10 --size 2048 ...]
The machine is shared (2 cores): producer thread, harvesters and the copy compete; read ratios, not absolutes.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # runnable without an editable install
    sys.path.insert(0, str(REPO))

from tests.fixtures.producer import build_fake_producer  # noqa: E402

PIXEL_BYTES = {"Mono8": 1, "Mono12": 2, "Mono16": 2}


def copy_ceiling(shape: tuple[int, int], dtype: np.dtype[np.generic], seconds: float) -> float:
    """Copies per second of one frame into a preallocated array (no camera involved)."""
    source = np.ones(shape, dtype=dtype)
    target = np.empty_like(source)
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        np.copyto(target, source)
        count += 1
    return count / (time.perf_counter() - start)


def fetch_rate(cti: Path, size: int, pixel_format: str, seconds: float, buffers: int) -> dict[str, float]:
    from harvesters.core import Harvester

    harvester = Harvester()
    harvester.add_file(str(cti))
    harvester.update()
    try:
        acquirer = harvester.create({"serial_number": "FAKE0001"})
        nm = acquirer.remote_device.node_map
        nm.Width.value, nm.Height.value, nm.PixelFormat.value = size, size, pixel_format
        nm.AcquisitionFrameRate.value = nm.AcquisitionFrameRate.max
        nm.ExposureTime.value = nm.ExposureTime.min
        acquirer.num_buffers = buffers
        dtype = np.dtype(np.uint8 if PIXEL_BYTES[pixel_format] == 1 else np.uint16)
        target = np.empty((size, size), dtype=dtype)
        acquirer.start()
        fetched, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            with acquirer.fetch(timeout=2.0) as buffer:
                component = buffer.payload.components[0]
                np.copyto(target, component.data.reshape(size, size))
            fetched += 1
        elapsed = time.perf_counter() - start
        generated, dropped = nm.FakeFrameCount.value, nm.FakeDroppedFrames.value
        acquirer.stop()
        return {
            "fps": fetched / elapsed,
            "drawn_fps": (generated - dropped) / elapsed,
            "dropped": dropped / max(generated, 1),
        }
    finally:
        harvester.reset()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--size", type=int, default=2048)
    parser.add_argument("--pixel-format", choices=sorted(PIXEL_BYTES), default="Mono16")
    parser.add_argument("--buffers", type=int, default=8)
    args = parser.parse_args()

    cti = build_fake_producer()
    frame_bytes = args.size * args.size * PIXEL_BYTES[args.pixel_format]
    dtype = np.dtype(np.uint8 if PIXEL_BYTES[args.pixel_format] == 1 else np.uint16)
    result = fetch_rate(cti, args.size, args.pixel_format, args.seconds, args.buffers)
    ceiling = copy_ceiling((args.size, args.size), dtype, min(args.seconds, 3.0))

    print(f"{args.size}x{args.size} {args.pixel_format}, {args.buffers} buffers, {args.seconds:.0f} s")
    print(f"{'path':<36}{'frames/s':>10}{'GB/s':>8}{'ratio':>8}")
    rows = [
        ("numpy copy alone (ceiling)", ceiling),
        ("producer frames drawn into buffers", result["drawn_fps"]),
        ("harvesters fetch + copy", result["fps"]),
    ]
    for name, fps in rows:
        print(f"{name:<36}{fps:>10.1f}{fps * frame_bytes / 1e9:>8.2f}{fps / ceiling:>8.3f}")
    print(f"frame ids dropped by the free-running producer (no free buffer): {result['dropped']:.1%}")


if __name__ == "__main__":
    main()
