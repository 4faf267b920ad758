"""What a waiting GenICam camera costs the other threads of its process: the GIL-free wait against the sliced one.

One ``GenicamCamera`` on the fake GenTL producer (built by ``tests/fake_genicam/build.sh``) reads frames on its
thread while another thread runs pure Python (a stand-in for a second camera, the frame sender, the control
server) and counts its loops. Each round runs both waits, alternating: ``gil_free`` (the camera's own, through
``EventGetData`` in ctypes) and ``sliced`` (genicam's event wait in 2 ms slices, as when the GIL-free wait cannot be
had). Reported per wait, medians over the rounds: the other thread's loops/s and its longest gap, and the camera
thread's CPU (% of a core). A camera that waits most of the time (a low frame rate, or a trigger that does not
come) shows the difference most.

    .venv/bin/python bench/camera_wait.py                       # 512x512 Mono16 at 20 frames/s, 5 rounds of 4 s
    .venv/bin/python bench/camera_wait.py --rate 100 --size 2048
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
from pathlib import Path
from unittest import mock

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from daemon.cameras.genicam import GenicamCamera  # noqa: E402
from daemon.cameras.new_buffer_event import EventWaitUnavailable, NewBufferEvent  # noqa: E402
from daemon.log import configure  # noqa: E402
from tests.cameras.genicam_support import fake_settings  # noqa: E402
from tests.fixtures.producer import build_fake_producer  # noqa: E402

LOOP_WORK = 2000  # additions per loop of the other thread (~0.1 ms of pure Python)


def one_round(cti: Path, args: argparse.Namespace, wait: str) -> dict[str, float]:
    refused = EventWaitUnavailable("sliced wait asked for by bench/camera_wait.py")
    # the sliced wait: what the camera does when the GIL-free one cannot be had
    fallback = mock.patch.object(NewBufferEvent, "attach", side_effect=refused) if wait == "sliced" else None
    if fallback is not None:
        fallback.start()
    camera = GenicamCamera(fake_settings(cti, width=args.size, height=args.size, frame_rate_hz=args.rate))
    stop = threading.Event()
    gaps: list[float] = []
    frames = [0]
    cpu = [0.0]

    def other() -> None:
        last = time.perf_counter()
        while not stop.is_set():
            total = 0
            for i in range(LOOP_WORK):
                total += i
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    def read() -> None:
        began = time.thread_time()
        while not stop.is_set():
            if camera.read(0.5) is not None:
                frames[0] += 1
        cpu[0] = time.thread_time() - began

    try:
        camera.open()
        camera.configure()
        camera.start()
        threads = [threading.Thread(target=other), threading.Thread(target=read)]
        began = time.perf_counter()
        for thread in threads:
            thread.start()
        time.sleep(args.seconds)
        stop.set()
        for thread in threads:
            thread.join()
        elapsed = time.perf_counter() - began
    finally:
        camera.close()
        if fallback is not None:
            fallback.stop()
    return {
        "loops_s": len(gaps) / elapsed,
        "max_gap_ms": max(gaps) * 1e3,
        "camera_cpu_pct": cpu[0] / elapsed * 100,
        "frames_s": frames[0] / elapsed,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--rate", type=float, default=20.0, help="the camera's frames/s")
    parser.add_argument("--seconds", type=float, default=4.0, help="length of each run")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    configure("console", level="WARNING", stream=sys.stderr)
    cti = build_fake_producer()
    runs: dict[str, list[dict[str, float]]] = {"gil_free": [], "sliced": []}
    for n in range(args.rounds):
        for wait in ("gil_free", "sliced") if n % 2 == 0 else ("sliced", "gil_free"):
            result = one_round(cti, args, wait)
            runs[wait].append(result)
            print(f"  {n + 1}: {wait:8s} " + ", ".join(f"{k} {v:.1f}" for k, v in result.items()), flush=True)
    print(f"\n{args.size}x{args.size} Mono16 at {args.rate:g} frames/s, {args.rounds} rounds of {args.seconds:g} s")
    print("| wait | other thread, loops/s | other thread, longest gap (ms) | camera thread, % of a core | frames/s |")
    print("|---|---|---|---|---|")
    for wait, results in runs.items():
        med = {k: statistics.median(r[k] for r in results) for k in results[0]}
        print(
            f"| {wait} | {med['loops_s']:.0f} | {med['max_gap_ms']:.1f} | {med['camera_cpu_pct']:.1f} | "
            f"{med['frames_s']:.1f} |"
        )


if __name__ == "__main__":
    main()
