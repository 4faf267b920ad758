"""What lending frame slots to the producer saves: the run process's CPU per frame, lent against copied.

One fake GenTL camera (built by ``tests/fake_genicam/build.sh``) runs through ``daemon.run.Run`` into a local Zarr
v3 store (Blosc lz4, a local worker process) at a fixed frame rate. Each round runs both ways, alternating:
``lent`` (the camera's own: the producer writes into the frame slots, :mod:`daemon.cameras.slot_loans`) and
``copied`` (``SlotLoans.lend`` refused in-process, as with a producer that will not take our buffers: every image
is copied out of harvesters' buffer). A first, discarded run warms the machine (the first run of a process was
the slowest in every series tried). Reported per run: frames delivered, stored and dropped, the run process's CPU
(the camera, the frame sender, and the fake producer's own drawing, which a real camera's DMA does not cost) per
frame delivered, and of it the fake producer's acquisition thread (``acqd-fake-eng``), and the camera's
``lent_frames`` / ``copied_frames``; medians over the rounds.

    .venv/bin/python bench/lent_slots.py                      # 2048x2048 Mono16 at 110 frames/s, 3 rounds of 30 s
    .venv/bin/python bench/lent_slots.py --rate 125 --seconds 60 --rounds 2
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any
from unittest import mock

from structlog.testing import capture_logs

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.pipeline import dimensions, genicam_settings, storage  # noqa: E402
from daemon.cameras.slot_loans import LoanUnavailable, SlotLoans  # noqa: E402
from daemon.log import configure  # noqa: E402
from daemon.profile import parse_profile  # noqa: E402
from daemon.run import Run  # noqa: E402
from tests.fixtures.producer import build_fake_producer  # noqa: E402

PRODUCER_THREAD = "acqd-fake-eng"  # the fake producer's acquisition thread names itself so


def self_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class ProducerCpu:
    """CPU seconds of the fake producer's acquisition threads in this process, sampled until :meth:`stop` (a
    thread's time goes with it when it ends, so the last sample before then counts)."""

    def __init__(self, interval_s: float = 0.2) -> None:
        self._seen: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, args=(interval_s,), daemon=True)
        self._thread.start()

    def _sample(self, interval_s: float) -> None:
        while not self._stop.wait(interval_s):
            for task in Path("/proc/self/task").iterdir():
                try:
                    if (task / "comm").read_text().strip() != PRODUCER_THREAD:
                        continue
                    fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
                except OSError:
                    continue  # the thread ended
                self._seen[task.name] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        return sum(self._seen.values())


def one_run(cti: Path, args: argparse.Namespace, way: str) -> dict[str, Any]:
    root = Path(tempfile.mkdtemp(prefix="acqd-lent-"))
    camera = genicam_settings(cti, args)
    doc = {
        "cameras": [{"name": "cam", "driver": "genicam", "dimensions": dimensions(args), "settings": camera}],
        "acquisition": {"duration_s": args.seconds, "queue_bytes": args.queue, "on_queue_full": "drop"},
        "storage": storage("lent.zarr", args),
    }
    refused = LoanUnavailable("copies asked for by bench/lent_slots.py")
    refusal = mock.patch.object(SlotLoans, "lend", side_effect=refused) if way == "copied" else None
    if refusal is not None:
        refusal.start()
    began, producer = self_cpu_s(), ProducerCpu()
    try:
        with capture_logs() as logs:
            run = Run(parse_profile(json.dumps(doc), "lent.yaml", root), log_level="WARNING")
            run.start()
            run.wait()
        summary = run.summary
    finally:
        if refusal is not None:
            refusal.stop()
        shutil.rmtree(root, ignore_errors=True)
    cpu, producer_cpu = self_cpu_s() - began, producer.stop()
    assert summary is not None
    counts = next((entry for entry in logs if entry["event"] == "camera_stopped"), {})
    return {
        "delivered": summary["delivered"],
        "stored": summary["stored"],
        "dropped": {k: v for k, v in summary["dropped"].items() if v},
        "cpu_ms_per_frame": 1000 * cpu / max(summary["delivered"], 1),
        "producer_ms_per_frame": 1000 * producer_cpu / max(summary["delivered"], 1),
        "lent_frames": counts.get("lent_frames", 0),
        "copied_frames": counts.get("copied_frames", 0),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=2048)
    parser.add_argument("--rate", type=float, default=110.0, help="the camera's frames/s")
    parser.add_argument("--seconds", type=float, default=30.0, help="length of each run")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--queue", default="3 GiB", help="acquisition.queue_bytes")
    args = parser.parse_args(argv)
    args.chunk_t, args.chunk_xy, args.threads = 32, min(512, args.size), 2  # as bench/sustain.py
    args.genicam_fps = args.rate
    configure("console", level="INFO", stream=sys.stderr)  # info: the runs capture camera_stopped
    cti = build_fake_producer()
    warm = one_run(cti, args, "copied")
    print(f"  warm-up (copied, discarded): {json.dumps(warm)}", flush=True)
    runs: dict[str, list[dict[str, Any]]] = {"lent": [], "copied": []}
    for n in range(args.rounds):
        for way in ("lent", "copied") if n % 2 == 0 else ("copied", "lent"):
            result = one_run(cti, args, way)
            runs[way].append(result)
            print(f"  {n + 1}: {way:6s} {json.dumps(result)}", flush=True)
    print(f"\n{args.size}x{args.size} Mono16 at {args.rate:g} frames/s, {args.rounds} rounds of {args.seconds:g} s")
    print(
        "| frames | runs with 0 dropped | run process CPU per frame (ms) | of which the fake producer's thread (ms) "
        "| lent / copied frames |"
    )
    print("|---|---|---|---|---|")
    for way, results in runs.items():
        clean = sum(1 for r in results if not r["dropped"])
        med = {k: statistics.median(r[k] for r in results) for k in results[0] if k != "dropped"}
        print(
            f"| {way} | {clean} of {len(results)} | {med['cpu_ms_per_frame']:.2f} | {med['producer_ms_per_frame']:.2f} "
            f"| {med['lent_frames']:.0f} / {med['copied_frames']:.0f} |"
        )


if __name__ == "__main__":
    main()
