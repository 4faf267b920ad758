"""The benchmark's report: the machine and versions, and the tables ``bench/run.py`` prints (markdown).

Targets (issue 8), checked on medians of the same run: acqd >= 1.5x acquire-zarr and >= 1.2x tensorstore in every
case; >= 80% of the binding limit for 2048x2048; peak RSS <= acqd's buffer budget + 200 MB; memory flat on the long
run; a frame on disk no later than its chunk's fill time + 1 s.
"""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
import time
from importlib import metadata
from pathlib import Path
from typing import Any

from bench.memory_state import meminfo_bytes

REPO = Path(__file__).resolve().parents[1]
MB = 1e6
COLD = "cold (dropped, 8 s idle before each run)"
WARM = "warm (before each run a child process touched and freed the case bytes + 1 GiB: the same memory state for all)"
# ``--results FILE`` replaces only what lies between these markers, so notes written by hand around a report survive
REPORT_BEGIN = "<!-- bench/run.py's report: a new run replaces everything up to the end marker, nothing else -->"
REPORT_END = "<!-- end of bench/run.py's report -->"
NAMES = {"acqd": "acqd", "acquire-zarr": "acquire-zarr", "tensorstore": "tensorstore", "zarr-python": "zarr-python"}


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


def _mem_gib() -> float:
    total = meminfo_bytes("MemTotal")
    return 0.0 if total is None else total / 2**30


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def _git() -> str:
    def git(*args: str) -> str:
        out = subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, text=True)
        return out.stdout.strip()

    rev = git("rev-parse", "--short", "HEAD") or "?"
    return rev + (" + uncommitted changes" if git("status", "--porcelain", "--untracked-files=no") else "")


def environment() -> dict[str, Any]:
    return {
        "date": time.strftime("%Y-%m-%d %H:%M %Z"),
        "cpu": _cpu(),
        "cores": os.cpu_count(),
        "mem_gib": _mem_gib(),
        "kernel": platform.release(),
        "load": os.getloadavg(),
        "python": platform.python_version(),
        "versions": {p: _version(p) for p in ("numpy", "numcodecs", "acquire-zarr", "tensorstore", "zarr")},
        "acqd": _git(),
    }


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def _limit(case: Any) -> tuple[float, str]:
    """The binding limit of a case (MB/s of frame bytes) and what binds."""
    write = _median([r["mb_s"] for r in case.limits.get("limit-write", [])])
    if case.spec["codec"] == "none":
        return write, "write"
    compress = _median([r["mb_s"] for r in case.limits.get("limit-compress", [])])
    ratio = _median([r["ratio"] for r in case.limits.get("limit-compress", [])])
    return (compress, "compression") if compress <= write * ratio else (write * ratio, "write x ratio")


def _rss(case: Any, system: str) -> float:
    return _median([(r["peak_rss"] - r["base_rss"]) / MB for r in case.runs[system]])


def throughput_table(cases: dict[str, Any], systems: list[str]) -> list[str]:
    peers = [s for s in systems if s != "acqd"]
    head = "| case | " + " | ".join(NAMES[s] for s in systems) + " | " + " | ".join(f"acqd / {p}" for p in peers)
    lines = [head + " |", "|---" * (1 + len(systems) + len(peers)) + "|"]
    for name, case in cases.items():
        rates = {s: case.mb_s(s) for s in systems}
        small = case.spec["size"] < 2048
        per_frame = case.spec["bytes"] / case.spec["frames"] / MB

        def cell(s: str, rates: dict[str, float] = rates, small: bool = small, per_frame: float = per_frame) -> str:
            return f"{rates[s]:.0f} MB/s ({rates[s] / per_frame:.0f} f/s)" if small else f"{rates[s]:.0f}"

        ratios = [f"{rates['acqd'] / rates[p]:.2f}" for p in peers] if "acqd" in rates else ["-"] * len(peers)
        lines.append(f"| {name} | " + " | ".join(cell(s) for s in systems) + " | " + " | ".join(ratios) + " |")
    return lines


def limits_table(cases: dict[str, Any], systems: list[str]) -> list[str]:
    head = "| case | write MB/s (best) | Blosc MB/s (ratio) | binding limit | "
    lines = [head + " | ".join(f"{NAMES[s]} % of limit" for s in systems) + " |", "|---" * (4 + len(systems)) + "|"]
    for name, case in cases.items():
        write = _median([r["mb_s"] for r in case.limits.get("limit-write", [])])
        comp = case.limits.get("limit-compress", [])
        blosc = "-"
        if comp:
            blosc = f"{_median([r['mb_s'] for r in comp]):.0f} ({_median([r['ratio'] for r in comp]):.2f})"
        limit, binds = _limit(case)
        shares = " | ".join(f"{case.mb_s(s) / limit:.0%}" for s in systems)
        lines.append(f"| {name} | {write:.0f} | {blosc} | {limit:.0f} ({binds}) | {shares} |")
    return lines


def _write_patterns(cases: dict[str, Any]) -> str:
    runs = next(iter(cases.values())).limits.get("limit-write", [])
    keys = [k for k in (runs[0] if runs else {}) if k != "mb_s"]
    return ", ".join(f"{k} {_median([r[k] for r in runs]):.0f}" for k in keys)


def memory_table(cases: dict[str, Any], systems: list[str]) -> list[str]:
    head = "| case | needed in flight (1 chunk row) | acqd budget | "
    lines = [head + " | ".join(NAMES[s] for s in systems) + " |", "|---" * (3 + len(systems)) + "|"]
    for name, case in cases.items():
        row = case.spec["chunk_t"] * case.spec["bytes"] / case.spec["frames"] / MB
        budget = case.runs["acqd"][0]["budget"] / MB if "acqd" in case.runs else float("nan")
        cells = " | ".join(f"{_rss(case, s):.0f}" for s in systems)
        lines.append(f"| {name} | {row:.0f} | {budget:.0f} | {cells} |")
    return lines


def latency_table(cases: dict[str, Any], paced: dict[str, Any]) -> list[str]:
    lines = ["| case | mode | frame on disk after arrival: p50 / max (s) | max beyond its chunk's fill time (s) | "
             "append p99 (s) |", "|---|---|---|---|---|"]  # fmt: skip
    rows = [(name, "as fast as possible (median run)", _median_run(case.runs["acqd"])) for name, case in cases.items()
            if "acqd" in case.runs]  # fmt: skip
    rows += [(name, f"offered {r['fps']:.0f} frames/s (60% of its throughput)", r) for name, r in paced.items()]
    for name, mode, r in rows:
        lines.append(f"| {name} | {mode} | {r['latency_p50_s']:.2f} / {r['latency_max_s']:.2f} | "
                     f"{r['excess_max_s']:.2f} | {r['append_p99_s']:.3f} |")  # fmt: skip
    return lines


def _median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    ordered = sorted(runs, key=lambda r: r["seconds"])
    return ordered[len(ordered) // 2]


def long_lines(long: dict[str, Any], limit: float | None = None) -> list[str]:
    """The long run's memory and speed; ``limit``: 2048-lz4's binding limit in the same run (MB/s), if measured."""
    samples = long["rss"]
    if len(samples) < 4:
        return ["(too short to judge)"]
    warm = [s for s in samples if s[0] >= samples[-1][0] * 0.2]
    t0, r0 = warm[0]
    t1, r1 = warm[-1]
    slope = (r1 - r0) / MB / max(1e-9, (t1 - t0) / 60)
    rss = [r / MB for _, r in warm]
    mb_s = long["bytes"] / long["seconds"] / MB
    share = f" ({mb_s / limit:.0%} of the binding limit above)" if limit else ""
    return [
        f"acqd, 2048-lz4, appending as fast as it can for {long['seconds']:.0f} s ({long['frames']} frames, "
        f"{mb_s:.0f} MB/s{share}; each shard deleted once durable so the disk does not fill): RSS after the first "
        f"20% of the run {min(rss):.0f}-{max(rss):.0f} MB (baseline {long['base_rss'] / MB:.0f} MB, budget "
        f"{long['budget'] / MB:.0f} MB), first {r0 / MB:.0f} MB, last {r1 / MB:.0f} MB: {slope:+.1f} MB/min. "
        f"Finalizer queue peak: {long['finalizer_peak']} objects."
    ]


def targets(cases: dict[str, Any], systems: list[str], extra: dict[str, Any]) -> list[str]:
    lines = []
    for name, case in cases.items():
        if "acqd" not in case.runs:
            continue
        ours = case.mb_s("acqd")
        checks = []
        if "acquire-zarr" in case.runs:
            checks.append((f"{ours / case.mb_s('acquire-zarr'):.2f}x acquire-zarr (>= 1.5)",
                           ours >= 1.5 * case.mb_s("acquire-zarr")))  # fmt: skip
        if "tensorstore" in case.runs:
            checks.append((f"{ours / case.mb_s('tensorstore'):.2f}x tensorstore (>= 1.2)",
                           ours >= 1.2 * case.mb_s("tensorstore")))  # fmt: skip
        limit, _ = _limit(case)
        if case.spec["size"] == 2048:
            checks.append((f"{ours / limit:.0%} of the binding limit (>= 80%)", ours >= 0.8 * limit))
        budget = case.runs["acqd"][0]["budget"] / MB
        checks.append((f"RSS +{_rss(case, 'acqd'):.0f} MB (<= {budget:.0f} + 200)", _rss(case, "acqd") <= budget + 200))
        excess = _median_run(case.runs["acqd"])["excess_max_s"]
        checks.append((f"on disk {excess:.2f} s after chunk fill (<= 1 s, unpaced)", excess <= 1.0))
        text = "; ".join(f"{label} {'met' if ok else 'NOT met'}" for label, ok in checks)
        lines.append(f"- {name}: {text}")
    sustain = extra.get("sustain", {})
    if "results" in sustain:
        engine = sum(sustain["engine"]) / len(sustain["engine"])
        for camera, r in sustain["results"].items():
            ok = r["rate"] >= 0.9 * engine and r["dropped"] == 0
            lines.append(f"- end to end, {camera} camera: {r['rate'] / engine:.2f}x the engine alone for 60 s, "
                         f"{r['dropped']} dropped (>= 0.9x, 0 dropped) {'met' if ok else 'NOT met'}")  # fmt: skip
    for name, r in extra.get("paced", {}).items():
        ok = r["excess_max_s"] <= 1.0
        lines.append(f"- {name} offered {r['fps']:.0f} f/s: on disk {r['excess_max_s']:.2f} s after chunk fill "
                     f"(<= 1 s) {'met' if ok else 'NOT met'}")  # fmt: skip
    return lines


def header(cases: dict[str, Any], args: Any, before: dict[str, Any], after: dict[str, Any], minutes: float
           ) -> list[str]:  # fmt: skip
    """When, where, with what, and how it was measured."""
    v = before["versions"]
    first = next(iter(cases.values())).spec
    return [
        "# Storage engine benchmark (`bench/run.py`)",
        "",
        f"{before['date']}, {minutes:.1f} min. Machine: {before['cpu']}, {before['cores']} cores, "
        f"{before['mem_gib']:.0f} GiB, Linux {before['kernel']}. Load average before/after: "
        f"{before['load'][0]:.1f} / {after['load'][0]:.1f}. The machine was shared with other work: absolute MB/s "
        "move between runs, ratios measured in the same run hold better.",
        "",
        f"Versions: acqd {before['acqd']}, Python {before['python']}, numpy {v['numpy']}, numcodecs {v['numcodecs']}, "
        f"acquire-zarr {v['acquire-zarr']}, tensorstore {v['tensorstore']}, zarr-python {v['zarr']}.",
        "",
        f"Workload: Zarr v3, chunks {first['chunk_t']}x{first['chunk_xy']}x{first['chunk_xy']}, shards 1x"
        f"{first['shard_xy']}x{first['shard_xy']} chunks (clamped to the frame), Blosc level 1 with byte shuffle, "
        f"asked for {first['blocksize'] >> 10} KiB blocks (Blosc caps lz4's at 256 KiB per byte of item: 512 KiB at "
        "uint16, 256 KiB at uint8; acquire-zarr: its own choice, it has no setting), "
        f"{args.threads} writer threads per system; {args.big_frames} frames of 2048x2048 uint16, "
        f"{args.small_frames} of 512x512 uint8 (moving pattern + Poisson noise). Medians of {args.reps} "
        f"repetitions, systems interleaved in a rotating order, each in its own process. Page cache: "
        f"{COLD if args.cold else WARM}. Timing: create "
        "the writer, write every frame, close, fsync every file and folder. acqd and acquire-zarr append one frame "
        "at a time; tensorstore and zarr-python write whole 64-frame slabs (their best case).",
        "",
    ]


def render(cases: dict[str, Any], args: Any, before: dict[str, Any], after: dict[str, Any], extra: dict[str, Any],
           minutes: float) -> str:  # fmt: skip
    systems = [s for s in args.systems if all(s in c.runs for c in cases.values())]
    out = [
        *header(cases, args, before, after, minutes),
        "## Throughput (MB/s of frame bytes; frames/s for 512x512)",
        "",
        *throughput_table(cases, systems),
        "",
        "## Against the machine's limits (measured in the same run)",
        "",
        *limits_table(cases, systems),
        "",
        "Binding limit: the write bandwidth (fsync included) uncompressed; compressed, the lower of Blosc's "
        "throughput on all cores and the write bandwidth times the compression ratio. Write patterns (median MB/s, "
        "64 MiB files, 1 GiB): " + _write_patterns(cases) + ".",
        "",
        "## Memory: peak RSS over the process's baseline (MB, median)",
        "",
        *memory_table(cases, systems),
        "",
        "tensorstore's and zarr-python's figures include the 64-frame slab the benchmark fills for them.",
        "",
        "## acqd latency: when a frame is durable and claimed by the metadata",
        "",
        *latency_table(cases, extra.get("paced", {})),
        "",
    ]
    if "long" in extra:
        lz4 = cases.get("2048-lz4")
        limit = _limit(lz4)[0] if lz4 is not None and lz4.limits.get("limit-compress") else None
        out += ["## Long run", "", *long_lines(extra["long"], limit), ""]
    out += ["## Read back (an untimed pass first; zarr-python, separate process, every value compared)", ""]
    out += [f"- {name}: " + ", ".join(f"{s} {r}" for s, r in c.verified.items()) for name, c in cases.items()
            if c.verified]  # fmt: skip
    out += ["", "## Targets", "", *targets(cases, systems, extra), ""]
    if "s3" in extra:
        local = cases["2048-lz4"].mb_s("acqd")
        out += ["## acqd to S3 (2048-lz4, SeaweedFS `weed mini` on loopback, same machine)", "",
                "| store | MB/s (median) | vs local disk |", "|---|---|---|",
                f"| local disk (above) | {local:.0f} | 1.00 |"]  # fmt: skip
        for mode, rates in extra["s3"].items():
            label = "S3 multipart, straight" if mode == "direct" else "staged: local disk, uploaded in the background"
            out.append(f"| {label} | {_median(rates):.0f} | {_median(rates) / local:.2f} |")
        out += ["", "Timing ends when the stream is closed: every object uploaded (staged: its close waits for the "
                "uploads). The S3 server shares the 2 cores. Not read back (no S3 reader installed).", ""]  # fmt: skip
    if "sustain" in extra:
        out += ["## End to end: the rate held for 60 s with zero drops (`bench/sustain.py`)", "",
                extra["sustain"]["text"], ""]  # fmt: skip
    if "pipeline" in extra:
        out += ["## End to end, as fast as the camera may go (`bench/pipeline.py --no-genicam`)", "",
                extra["pipeline"], ""]  # fmt: skip
    out += ["## Every run (MB/s)", "", "| case | system | runs |", "|---|---|---|"]
    for name, case in cases.items():
        for s, runs in case.runs.items():
            out.append(f"| {name} | {s} | " + ", ".join(f"{case.spec['bytes'] / r['seconds'] / MB:.0f}" for r in runs)
                       + " |")  # fmt: skip
    return "\n".join(out)


def splice(existing: str | None, report: str) -> str:
    """``existing`` (a results file's text, or None) with its marked report replaced by ``report``.

    A file without the markers keeps all of its text, after the new report.
    """
    block = f"{REPORT_BEGIN}\n{report.strip()}\n{REPORT_END}\n"
    if not existing:
        return block
    start = existing.find(REPORT_BEGIN)
    end = existing.find(REPORT_END, max(start, 0))
    if start < 0 or end < 0:
        return f"{block}\n{existing}"
    return existing[:start] + block + existing[end + len(REPORT_END) :].removeprefix("\n")
