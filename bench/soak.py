"""The chaos soak by hand: ``acqd serve`` with two fake GenTL cameras (local + staged S3 stores) under a seeded
fault schedule for N minutes, then SIGTERM; prints the invariant table (see tests/soak/harness.py).

    .venv/bin/python bench/soak.py --minutes 30 --seed 7
    .venv/bin/python bench/soak.py --minutes 5 --only daemon_kill,disk_full --keep /tmp/soak

Exit status 0 when every invariant held, 1 otherwise (the table's BAD rows and the problem list say which).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.fixtures.producer import build_fake_producer
from tests.fixtures.s3 import SeaweedServer
from tests.soak.faults import BY_NAME
from tests.soak.harness import Soak, table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=10.0, help="time spent in fault cycles (default 10)")
    parser.add_argument("--seed", type=int, default=int(time.time()) % 100_000, help="fault schedule seed")
    parser.add_argument("--only", default="", help=f"comma-separated faults among: {', '.join(BY_NAME)}")
    parser.add_argument("--keep", type=Path, default=None, help="work in this folder and keep it (logs, stores)")
    args = parser.parse_args(argv)
    only = tuple(name for name in args.only.split(",") if name)
    unknown = [name for name in only if name not in BY_NAME]
    if unknown:
        parser.error(f"unknown faults {unknown}; known: {', '.join(BY_NAME)}")
    root = args.keep or Path(tempfile.mkdtemp(prefix="acqd-soak-"))
    root.mkdir(parents=True, exist_ok=True)
    server = SeaweedServer(root / "seaweedfs")
    server.start()
    soak = Soak(root / "soak", server, build_fake_producer(), args.seed, only)
    print(f"soak: seed {args.seed}, {args.minutes} min, folder {root}", flush=True)
    began = time.monotonic()
    try:
        rows = soak.run(args.minutes * 60)
    finally:
        soak.close()
        server.stop()
    print(table(rows))
    ping = soak.sampler.latencies
    print(
        f"\n{len({row.cycle for row in rows})} cycles in {time.monotonic() - began:.0f} s; pings {len(ping)}, "
        f"max {max(ping, default=0) * 1000:.1f} ms; daemon starts {soak.daemon.starts}; seed {args.seed}"
    )
    for problem in soak.problems:
        print(f"PROBLEM {problem}")
    if args.keep is None and not soak.problems:
        shutil.rmtree(root, ignore_errors=True)
    return 1 if soak.problems else 0


if __name__ == "__main__":
    sys.exit(main())
