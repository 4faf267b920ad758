"""The benchmark: acqd's storage engine against acquire-zarr 0.10, tensorstore and zarr-python, and the limits.

Usage (from the repository root):
    .venv/bin/python bench/run.py                                 # full: ~23 min on this shared 2-core VM
    .venv/bin/python bench/run.py --quick                         # a look: smaller runs, 2 repetitions
    .venv/bin/python bench/run.py --results bench/RESULTS.md      # also put the tables there (between markers)

For each case (2048x2048 uint16 and 512x512 uint8 microscope-like frames; Blosc lz4 + shuffle, Blosc zstd + shuffle,
no compression; Zarr v3, chunks 64x512x512, shards 1x2x2 chunks) and each repetition, every system writes the same
frames in its own process (``bench/systems.py``), in an order that rotates between repetitions, interleaved with
the limits of the machine (``bench/limits.py``). Reported: medians, ratios between systems measured in the same run,
each MB/s as a fraction of the limit that binds, peak RSS over each process's baseline next to what the
configuration needs in flight, acqd's latency (a frame on disk after its chunk filled), and a long run's memory.
Before the timed repetitions, an untimed pass writes every case once with every system and reads each store back
with zarr-python in another process, comparing every value (so no read-back sits between timed runs).

Memory state: ``warm`` (default) has a child process touch and free the case's bytes + 1 GiB before every run, so
a page-cache writer never pays for memory a writer with ``O_DIRECT`` left cold on this kind of VM
(``bench/memory_state.py`` says why); ``--cold`` instead drops the page cache and idles 8 s before every run.
The machine may be shared: read ratios, not absolutes.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.engine import make_frames  # noqa: E402
from bench.memory_state import warm_memory  # noqa: E402
from bench.report import environment, render, splice  # noqa: E402
from daemon.storage.codec import BLOSC_BLOCK_BYTES  # noqa: E402

PY = sys.executable
SYSTEMS = ("acqd", "acquire-zarr", "tensorstore", "zarr-python")
ARRAY_PATH = {"acqd": "0", "acquire-zarr": "", "tensorstore": "", "zarr-python": ""}  # acqd writes an OME image
CASES: dict[str, dict[str, Any]] = {
    f"{size}-{codec}": {"size": size, "dtype": dtype, "codec": codec}
    for size, dtype in ((2048, "uint16"), (512, "uint8"))
    for codec in ("lz4", "zstd", "none")
}
GEOMETRY = {"chunk_t": 64, "chunk_xy": 512, "shard_xy": 2}
PACE = 0.6  # the latency runs offer frames at this fraction of acqd's median throughput (a camera it keeps up with)


@dataclass
class CaseResults:
    """Every measurement of one case, by system (or limit), over the repetitions."""

    spec: dict[str, Any]
    runs: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    verified: dict[str, str] = field(default_factory=dict)
    limits: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def mb_s(self, system: str) -> float:
        return statistics.median(self.spec["bytes"] / r["seconds"] / 1e6 for r in self.runs[system])


def child(spec: dict[str, Any], env: dict[str, str] | None = None) -> dict[str, Any]:
    command = [PY, str(REPO / "bench" / "systems.py"), json.dumps(spec)]
    out = subprocess.run(command, capture_output=True, text=True, env=None if env is None else os.environ | env)
    if out.returncode != 0:
        raise RuntimeError(f"{spec['system']} failed: {out.stderr.strip()[-2000:]}")
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def verify(store: Path, system: str, frames_file: Path, n: int) -> str:
    cmd = [PY, str(REPO / "bench" / "verify.py"), str(store), ARRAY_PATH[system], str(frames_file), str(n)]
    out = subprocess.run(cmd, capture_output=True, text=True)
    return out.stdout.strip() or out.stderr.strip().splitlines()[-1]


def settle(cold: bool, nbytes: int) -> None:
    """Every run starts from the same memory state. Warm: :func:`~bench.memory_state.warm_memory` (``nbytes`` +
    1 GiB touched and freed by a child process). Cold: no cached file pages and idle memory handed back to the
    host."""
    if not cold:
        warm_memory(nbytes)
        return
    subprocess.run(["sync"], check=True)
    try:
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
    except OSError as exc:
        print(f"  (cannot drop the page cache: {exc})", file=sys.stderr)
    time.sleep(8)


def run_case(name: str, case: CaseResults, args: argparse.Namespace, rep: int, out: Path) -> None:
    spec = case.spec
    order = list(args.systems)
    order = order[rep % len(order) :] + order[: rep % len(order)]
    if rep % 2:
        order.reverse()
    for system in [*(["limit-compress"] if spec["codec"] != "none" else []), *order]:
        settle(args.cold, spec["bytes"])
        path = out / f"{name}-{system}.zarr"
        shutil.rmtree(path, ignore_errors=True)
        result = child(spec | {"system": system, "path": str(path)})
        if system.startswith("limit-"):
            case.limits.setdefault(system, []).append(result)
            continue
        case.runs.setdefault(system, []).append(result)
        rate = spec["bytes"] / result["seconds"] / 1e6
        print(f"  rep {rep + 1} {name:>9} {system:>13}: {rate:8.1f} MB/s  ({result['seconds']:.2f} s)", flush=True)
        shutil.rmtree(path, ignore_errors=True)


def read_back(name: str, case: CaseResults, args: argparse.Namespace, out: Path) -> None:
    """The untimed pass: every system writes the case once, and zarr-python reads each store back and compares."""
    for system in args.systems:
        path = out / f"{name}-{system}.zarr"
        shutil.rmtree(path, ignore_errors=True)
        child(case.spec | {"system": system, "path": str(path)})
        case.verified[system] = verify(path, system, Path(case.spec["frames_file"]), case.spec["frames"])
        print(f"  read back {name:>9} {system:>13}: {case.verified[system]}", flush=True)
        shutil.rmtree(path, ignore_errors=True)


def write_limit(out: Path, cold: bool) -> dict[str, float]:
    """Durable sequential write bandwidth (MB/s), by pattern, and the best of them."""
    found = {}
    for direct in (False, True):
        for streams in (1, 2):
            spec = {"system": "limit-write", "path": str(out / "limit-write"), "bytes": 1 << 30, "file_mib": 64,
                    "streams": streams, "direct": direct}  # fmt: skip
            settle(cold, spec["bytes"])
            found[f"{'direct' if direct else 'buffered'} x{streams}"] = child(spec)["mb_s"]
    return found | {"mb_s": max(found.values())}


def paced(name: str, case: CaseResults, fps: float, out: Path) -> dict[str, Any]:
    """acqd alone, frames offered at ``fps`` (a camera it keeps up with): how late each frame reaches the disk."""
    path = out / f"{name}-paced.zarr"
    result = child(case.spec | {"system": "acqd", "path": str(path), "period_s": 1.0 / fps})
    shutil.rmtree(path, ignore_errors=True)
    return result | {"fps": fps}


def s3_rows(case: CaseResults, reps: int, out: Path) -> dict[str, list[float]]:
    """acqd writing the case to S3 (a local SeaweedFS on loopback): straight to S3, and staged on local disk first."""
    from tests.fixtures.s3 import SeaweedServer

    server = SeaweedServer(out / "seaweedfs")
    server.start()
    rates: dict[str, list[float]] = {"direct": [], "staged": []}
    try:
        bucket = server.make_bucket()
        base = {"endpoint": server.endpoint, "region": "us-east-1"}
        for rep in range(reps):
            for mode in rates:
                s3 = base | ({"staging_dir": str(out / f"staging-{rep}")} if mode == "staged" else {})
                spec = case.spec | {"system": "acqd", "path": str(out / "s3"), "s3": s3,
                                    "url": f"s3://{bucket}/{mode}-{rep}.zarr"}  # fmt: skip
                rates[mode].append(case.spec["bytes"] / child(spec, server.env)["seconds"] / 1e6)
                print(f"  rep {rep + 1} acqd -> S3 {mode}: {rates[mode][-1]:.0f} MB/s", flush=True)
                shutil.rmtree(out / f"staging-{rep}", ignore_errors=True)
    finally:
        server.stop()
    return rates


def long_run(case: CaseResults, seconds: float, out: Path) -> dict[str, Any]:
    path = out / "long.zarr"
    result = child(case.spec | {"system": "acqd-long", "path": str(path), "seconds": seconds})
    shutil.rmtree(path, ignore_errors=True)
    return result


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer frames and repetitions (a look, not a result)")
    parser.add_argument("--reps", type=int, default=None, help="repetitions (default 3, quick 2)")
    parser.add_argument("--big-frames", type=int, default=None, help="2048x2048 frames per run (default 384)")
    parser.add_argument("--small-frames", type=int, default=None, help="512x512 frames per run (default 12288)")
    parser.add_argument("--cases", default=",".join(CASES), help=f"comma-separated, among {', '.join(CASES)}")
    parser.add_argument("--systems", default=",".join(SYSTEMS), help="comma-separated, among " + ", ".join(SYSTEMS))
    parser.add_argument("--threads", type=int, default=2, help="writer threads of every system")
    parser.add_argument("--cold", action="store_true", help="drop the page cache and idle before every run")
    parser.add_argument("--no-verify", action="store_true")
    parser.add_argument("--long", type=float, default=None, help="seconds of the long acqd run (default 30, quick 15)")
    parser.add_argument("--out", type=Path, default=None, help="folder for the stores (default: a temporary one)")
    parser.add_argument(
        "--results", type=Path, default=None, help="put the report (markdown) in this file, replacing the last one"
    )
    parser.add_argument("--pipeline", action="store_true", help="also run bench/pipeline.py and report its table")
    parser.add_argument("--s3", action="store_true", help="also write 2048-lz4 to a local SeaweedFS S3 server")
    parser.add_argument(
        "--sustain", action="store_true", help="also run bench/sustain.py (the rate held 60 s with zero drops)"
    )
    args = parser.parse_args(argv)
    args.reps = args.reps or (2 if args.quick else 3)
    args.big_frames = args.big_frames or (128 if args.quick else 384)
    args.small_frames = args.small_frames or (1024 if args.quick else 12288)
    args.long = (15.0 if args.quick else 30.0) if args.long is None else args.long
    args.cases = [c for c in args.cases.split(",") if c]
    args.systems = [s for s in args.systems.split(",") if s]
    for c in args.cases:
        if c not in CASES:
            parser.error(f"unknown case {c!r}; known: {', '.join(CASES)}")
    for s in args.systems:
        if s not in SYSTEMS:
            parser.error(f"unknown system {s!r}; known: {', '.join(SYSTEMS)}")
    return args


def pipeline_table() -> str:
    script = REPO / "bench" / "pipeline.py"
    if not script.exists():
        return "(bench/pipeline.py does not exist yet)"
    # 1000 frames: the simulated camera draws its 128 phases once, which would dominate a 200-frame run
    out = subprocess.run([PY, str(script), "--no-genicam", "--frames", "1000"], capture_output=True, text=True)
    return out.stdout.strip() if out.returncode == 0 else f"(bench/pipeline.py failed: {out.stderr.strip()[-500:]})"


def sustain_results(out: Path) -> dict[str, Any]:
    """bench/sustain.py's table (its stdout) and figures (its JSON), or the error it met."""
    figures = out / "sustain.json"
    command = [PY, str(REPO / "bench" / "sustain.py"), "--json", str(figures)]
    run = subprocess.run(command, capture_output=True, text=True)
    if run.returncode != 0:
        return {"text": f"(bench/sustain.py failed: {run.stderr.strip()[-500:]})"}
    return {"text": run.stdout.strip(), **json.loads(figures.read_text())}


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    out = args.out or Path(tempfile.mkdtemp(prefix="acqd-bench-"))
    out.mkdir(parents=True, exist_ok=True)
    env_before = environment()
    started = time.monotonic()
    cases: dict[str, CaseResults] = {}
    for name in args.cases:
        spec = CASES[name] | GEOMETRY | {"threads": args.threads, "blocksize": BLOSC_BLOCK_BYTES}
        spec["frames"] = args.big_frames if spec["size"] == 2048 else args.small_frames
        frames_file = out / f"frames-{spec['size']}-{spec['dtype']}.npy"
        if not frames_file.exists():
            np.save(frames_file, make_frames(16, spec["size"], spec["dtype"]))
        spec["frames_file"] = str(frames_file)
        spec["bytes"] = spec["frames"] * spec["size"] ** 2 * np.dtype(spec["dtype"]).itemsize
        cases[name] = CaseResults(spec)
    print(f"stores in {out}; {args.reps} repetitions; page cache {'cold' if args.cold else 'warm'}", flush=True)
    extra: dict[str, Any] = {}
    writes: list[dict[str, float]] = []
    try:
        if not args.no_verify:  # first, apart: reading a store back must not sit between timed runs
            for name, case in cases.items():
                read_back(name, case, args, out)
        for rep in range(args.reps):
            writes.append(write_limit(out, args.cold))
            print(f"  rep {rep + 1} write limit: " + ", ".join(f"{k} {v:.0f}" for k, v in writes[-1].items()))
            for name, case in cases.items():
                case.limits.setdefault("limit-write", []).append(writes[-1])
                run_case(name, case, args, rep, out)
        if "acqd" in args.systems:
            frame_mb = {n: c.spec["bytes"] / c.spec["frames"] / 1e6 for n, c in cases.items()}
            extra["paced"] = {n: paced(n, c, PACE * c.mb_s("acqd") / frame_mb[n], out) for n, c in cases.items()}
            if args.long > 0 and "2048-lz4" in cases:
                extra["long"] = long_run(cases["2048-lz4"], args.long, out)
        if args.s3 and "2048-lz4" in cases:
            extra["s3"] = s3_rows(cases["2048-lz4"], min(2, args.reps), out)
        if args.pipeline:
            extra["pipeline"] = pipeline_table()
        if args.sustain:
            extra["sustain"] = sustain_results(out)
    finally:
        if args.out is None:
            shutil.rmtree(out, ignore_errors=True)
    minutes = (time.monotonic() - started) / 60
    text = render(cases, args, env_before, environment(), extra, minutes)
    print("\n" + text)
    if args.results is not None:
        existing = args.results.read_text() if args.results.exists() else None
        partial = args.results.with_name(args.results.name + ".partial")
        partial.write_text(splice(existing, text))
        partial.replace(args.results)  # the old file stays whole if the write fails
        print(f"\nwritten to {args.results}")


if __name__ == "__main__":
    main()
