"""The chaos soak: ``acqd serve`` with two fake GenTL cameras (a local store and a staged S3 store behind a TCP
proxy) through a seeded schedule of faults, checking every invariant after each fault and printing a table.

One *cycle*: start both runs (inline profiles; a new run must start after every fault), let frames flow, fire the
cycle's fault (:mod:`tests.soak.faults`), stop the runs still live, wait for their end, then check:

- the run ended as the fault allows; its books balance (delivered = stored + dropped, every drop with a reason);
- its store (an S3 store downloaded first) passes :func:`tests.soak.store_check.check_store` and holds what the run
  says it stored (a run whose worker was lost may hold more: frames finalised but never acknowledged, which the
  books count ``worker_lost``); an ``interrupted`` run's recovered ``frames_claimed`` equals what the store holds;
- no ``*.partial``/``*.tmp`` under the data root, no multipart upload left under the S3 prefix, no staging folder
  left (everything uploaded);
- ``ping`` answered within 1 s every ~0.5 s throughout (except while the daemon is down on purpose);
- the daemon's RSS and fd count, per daemon start, grow by at most ``RSS_GROWTH_KIB`` / ``FD_GROWTH``.

After a crash (``daemon_kill``) the interrupted local run is resumed (``start`` with ``resume``) into its store for
a second and stopped: a ``resume`` row, checked like any run, the store then holding the interrupted run's claimed
frames plus the resumed run's (the gap's padding rows are no frames: :mod:`tests.soak.store_check`).

The soak ends with SIGTERM mid-run: exit status 0, both runs ``finished`` in the run journal, stores intact.
"""

from __future__ import annotations

import random
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from daemon.ipc.client import Client, RemoteError
from daemon.run_journal import RunJournal
from tests.fixtures.s3 import SeaweedServer, download
from tests.fixtures.tcp_proxy import TcpProxy
from tests.soak.daemon_watch import PingSampler, SoakDaemon, proc_stats
from tests.soak.faults import FAULTS, Fault, schedule
from tests.soak.profiles import S3Target, config_yaml, genicam_yaml
from tests.soak.store_check import StoreReport, check_store, stale_files

ROLES = ("local", "s3")
SERIALS = {"local": "FAKE0001", "s3": "FAKE0002"}
RSS_GROWTH_KIB = 96 * 1024
FD_GROWTH = 24
RUN_END_TIMEOUT_S = 120.0
WARMUP_S = (0.8, 1.6)
RESUMED_FOR_S = 1.0


@dataclass
class Row:
    cycle: int
    fault: str
    role: str
    run_id: str
    state: str
    delivered: int
    stored: int
    drops: str
    in_store: int
    ping_ms: float
    rss_mb: float
    fds: int
    note: str
    problems: list[str] = field(default_factory=list)


class Soak:
    """The harness (see the module notes); :meth:`run` returns the rows, :attr:`problems` what broke."""

    def __init__(self, root: Path, server: SeaweedServer, cti: Path, seed: int, only: tuple[str, ...] = ()) -> None:
        self.root = root
        self.server = server
        self.seed = seed
        self.rng = random.Random(seed)
        self.only = only
        self.rows: list[Row] = []
        self.problems: list[str] = []
        self.bucket = server.make_bucket()
        self.proxy = TcpProxy("127.0.0.1", server.ports["s3.port"])
        gentl = root / "gentl"
        gentl.mkdir(parents=True, exist_ok=True)
        (gentl / cti.name).unlink(missing_ok=True)
        (gentl / cti.name).symlink_to(cti)
        (root / "profiles").mkdir(exist_ok=True)
        (root / "data").mkdir(exist_ok=True)
        (root / "acqd.yaml").write_text(config_yaml())
        self.staging = root / "staging"
        self._runtime = Path(tempfile.mkdtemp(prefix="acqd-soak-", dir="/tmp"))
        env = {"GENICAM_GENTL64_PATH": str(gentl), **server.env}
        self.daemon = SoakDaemon(root, self._runtime, env)
        self.sampler = PingSampler(self.daemon)
        self._baseline: tuple[int, int] | None = None
        self._runs: dict[str, str] = {}

    # -- what faults use ------------------------------------------------------------------------------------------

    @property
    def events_endpoint(self) -> str:
        return self.daemon.events

    @property
    def control_endpoint(self) -> str:
        return self.daemon.control

    def worker_pid(self, role: str) -> int | None:
        return self.daemon.worker_pid(self._runs[role])

    def crash_and_restart(self) -> None:
        self.sampler.pause()
        self.daemon.kill()
        self.daemon.start()
        self._baseline = None
        self.sampler.resume()

    # -- the soak -------------------------------------------------------------------------------------------------

    def run(self, seconds: float) -> list[Row]:
        self.daemon.start()
        self.sampler.start()
        try:
            deadline = time.monotonic() + seconds
            faults = schedule(self.seed, self.only)
            cycle = 0
            every_fault_once = len(self.only or FAULTS)  # the schedule's first pass: on a slow machine, past time
            while time.monotonic() < deadline or cycle < every_fault_once:
                cycle += 1
                self._cycle(cycle, next(faults))
            self._final_sigterm(cycle + 1)
        finally:
            self.sampler.stop()
            self.daemon.close()
        self._check_secrets()
        max_ping = max(self.sampler.latencies, default=0.0)
        if self.sampler.failures or max_ping > 1.0:
            self.problems.append(f"ping: max {max_ping * 1000:.0f} ms, failures {self.sampler.failures[:3]}")
        return self.rows

    def close(self) -> None:
        self.sampler.stop()
        self.daemon.close()
        self.proxy.close()
        shutil.rmtree(self._runtime, ignore_errors=True)

    def _start_runs(self, cycle: int, fault: Fault | None) -> None:
        nodes = fault.nodes(self.rng) if fault is not None else {}
        target = S3Target(self.bucket, self.proxy.endpoint, str(self.staging))
        with self.daemon.client() as client:
            local = genicam_yaml(SERIALS["local"], f"soak/c{cycle:03d}-local.zarr", nodes=nodes)
            remote = genicam_yaml(SERIALS["s3"], f"s3://{self.bucket}/soak/c{cycle:03d}-s3.zarr", s3=target)
            self._runs = {"local": client.start(yaml=local), "s3": client.start(yaml=remote)}
            for run_id in self._runs.values():
                state = _wait_state(client, run_id, ("running", *TERMINAL), 30.0)["state"]
                if state != "running":
                    self.problems.append(f"cycle {cycle}: run {run_id} did not start ({state})")

    def _cycle(self, cycle: int, fault: Fault) -> None:
        began = len(self.sampler.latencies)
        self._start_runs(cycle, fault)
        time.sleep(self.rng.uniform(*WARMUP_S))
        try:
            note = fault.fire(self)
        except Exception as exc:  # a fault that could not be applied is a finding, not a harness crash
            note = f"fault not applied: {type(exc).__name__}: {exc}"
            self.problems.append(f"cycle {cycle} {fault.name}: {note}")
        time.sleep(0.5)
        with self.daemon.client() as client:
            if fault.crash:
                ends = {role: _wait_recovered(client, run_id) for role, run_id in self._runs.items()}
            else:
                for run_id in self._runs.values():
                    client.call("stop", {"run_id": run_id})
                ends = {role: _wait_state(client, run_id, TERMINAL) for role, run_id in self._runs.items()}
        interrupted = frozenset({"interrupted"})
        allowed = {"local": fault.local, "s3": fault.s3} if not fault.crash else dict.fromkeys(ROLES, interrupted)
        for role, status in ends.items():
            self._wait_journal(role, status)
            self._check_run(cycle, fault.name, role, status, allowed[role], note, began)
        if fault.crash and ends["local"]["state"] == "interrupted":
            self._resume(cycle, "local", ends["local"])

    def _resume(self, cycle: int, role: str, interrupted: dict[str, Any]) -> None:
        """``start`` with ``resume``: append to the interrupted run's store for a moment, stop, check it like any
        other store (its earlier frames counted once: ``frames_claimed`` of the recovered run)."""
        began = len(self.sampler.latencies)
        with self.daemon.client() as client:
            try:
                run_id = client.resume(interrupted["run_id"])
            except RemoteError as exc:
                self.problems.append(f"cycle {cycle} resume {role}: refused: {exc}")
                return
            self._runs[role] = run_id
            _wait_state(client, run_id, ("running", *TERMINAL), 30.0)
            time.sleep(RESUMED_FOR_S)
            client.call("stop", {"run_id": run_id})
            status = _wait_state(client, run_id, TERMINAL)
        self._wait_journal(role, status)
        before = int(interrupted["counts"].get("frames_claimed", 0))
        note = f"resumes {interrupted['run_id']}"
        self._check_run(cycle, "resume", role, status, {"finished"}, note, began, before=before)

    def _final_sigterm(self, cycle: int) -> None:
        began = len(self.sampler.latencies)
        self._start_runs(cycle, None)
        time.sleep(1.5)
        self.sampler.pause()
        code = self.daemon.terminate()
        if code != 0:
            self.problems.append(f"SIGTERM: exit status {code}")
        journal = RunJournal(self.daemon.state)
        for role, run_id in self._runs.items():
            entry = journal.read(run_id)
            if entry is None:
                self.problems.append(f"SIGTERM: no journal entry for {run_id}")
                continue
            status = {"run_id": run_id, "state": entry.state, "counts": dict(entry.counts), "drops": {}}
            counts = status["counts"]
            status["drops"] = {k[len("dropped_") :]: v for k, v in counts.items() if k.startswith("dropped_")}
            self._check_run(cycle, "sigterm", role, status, {"finished"}, "SIGTERM mid-run", began, stats=False)

    # -- checks ---------------------------------------------------------------------------------------------------

    def _check_secrets(self) -> None:
        """The S3 credentials appear in no line the daemon (or a worker) wrote."""
        text = self.daemon.log_path.read_text(errors="replace") + self.daemon.stderr()
        for name, secret in (("access key id", self.server.access_key), ("secret", self.server.secret_key)):
            if secret in text:
                self.problems.append(f"the S3 {name} appears in the daemon's output")

    def _wait_journal(self, role: str, status: dict[str, Any]) -> None:
        """Wait until the run's journal entry is closed (a failed run's store is tidied first)."""
        journal = RunJournal(self.daemon.state)
        deadline = time.monotonic() + RUN_END_TIMEOUT_S
        while (entry := journal.read(status["run_id"])) is None or entry.state == "running":
            if time.monotonic() > deadline:
                self.problems.append(f"{role} run {status['run_id']}: journal entry still open")
                return
            time.sleep(0.1)

    def _check_run(
        self,
        cycle: int,
        fault: str,
        role: str,
        status: dict[str, Any],
        allowed: set[str] | frozenset[str],
        note: str,
        began: int,
        *,
        stats: bool = True,
        before: int | None = None,
    ) -> None:
        counts, drops = status.get("counts", {}), status.get("drops", {})
        problems = [] if status["state"] in allowed else [f"state {status['state']} not in {sorted(allowed)}"]
        report = self._store_report(cycle, role)
        problems += report.problems
        problems += self._books(status["state"], counts, drops, report, before or 0)
        if before is not None and report.resumes == 0:
            problems.append("a resumed store without an acqd.resumes record")
        data_stale = stale_files(self.root / "data")
        problems += [f"stale {p.name}" for p in data_stale[:3]]
        rss, fds = self._daemon_stats(problems) if stats else (0, 0)
        ping_ms, _ = self.sampler.window(began)
        self.rows.append(
            Row(
                cycle=cycle,
                fault=fault,
                role=role,
                run_id=status["run_id"],
                state=status["state"],
                delivered=int(counts.get("frames_delivered", 0)),
                stored=int(counts.get("frames_stored", counts.get("frames_claimed", 0))),
                drops=",".join(f"{k}={v}" for k, v in sorted(drops.items()) if v) or "-",
                in_store=report.frames,
                ping_ms=ping_ms,
                rss_mb=rss / 1024,
                fds=fds,
                note="; ".join(x for x in (note if role == "local" else "", _untabled(report)) if x),
                problems=problems,
            )
        )
        self.problems += [f"cycle {cycle} {fault} {role}: {p}" for p in problems]

    def _store_report(self, cycle: int, role: str) -> StoreReport:
        if role == "local":
            return check_store(self.root / "data" / "soak" / f"c{cycle:03d}-local.zarr")
        prefix = f"soak/c{cycle:03d}-s3.zarr"
        copy = self.root / "downloads" / f"c{cycle:03d}-s3.zarr"
        download(self.server, self.bucket, prefix, copy)
        report = check_store(copy, label=f"s3://{self.bucket}/{prefix}")
        if self.server.uploads(self.bucket, prefix + "/"):
            report.problems.append("multipart uploads left under the prefix")
        leftovers = [p.name for p in self.staging.glob(f"*c{cycle:03d}-s3*")] if self.staging.exists() else []
        if leftovers:
            report.problems.append(f"staging folder left: {leftovers}")
        shutil.rmtree(copy, ignore_errors=True)
        return report

    @staticmethod
    def _books(
        state: str, counts: dict[str, Any], drops: dict[str, int], report: StoreReport, before: int = 0
    ) -> list[str]:
        """The run's books balance and match its store (``before``: frames an interrupted run this one resumes
        left in the store)."""
        if state == "interrupted":
            claimed = counts.get("frames_claimed")
            return [] if claimed == report.frames else [f"recovery claims {claimed}, the store holds {report.frames}"]
        delivered, stored = counts.get("frames_delivered", 0), counts.get("frames_stored", 0)
        problems = []
        if delivered != stored + sum(drops.values()):
            problems.append(f"books: delivered {delivered} != stored {stored} + dropped {sum(drops.values())}")
        lost = drops.get("worker_lost", 0) + drops.get("storage_error", 0)
        if not stored <= report.frames - before <= stored + lost:
            held = f"{report.frames}" + (f" ({before} before the resume)" if before else "")
            problems.append(f"the run stored {stored} (lost {lost}), the store holds {held}")
        if state == "finished" and delivered == 0:
            problems.append("no frame delivered")
        if state == "finished" and report.untabled:
            problems.append(f"{report.untabled} stored frames have no frame-table row")
        return problems

    def _daemon_stats(self, problems: list[str]) -> tuple[int, int]:
        rss, fds = proc_stats(self.daemon.pid)
        if self._baseline is None:
            self._baseline = (rss, fds)
        elif rss - self._baseline[0] > RSS_GROWTH_KIB or fds - self._baseline[1] > FD_GROWTH:
            problems.append(f"daemon grew: rss {self._baseline[0]}->{rss} KiB, fds {self._baseline[1]}->{fds}")
        return rss, fds


TERMINAL = ("finished", "aborted", "failed", "interrupted")


def _wait_state(client: Client, run_id: str, states: tuple[str, ...], timeout_s: float = RUN_END_TIMEOUT_S) -> dict:
    deadline = time.monotonic() + timeout_s
    while True:
        run = client.status(run_id)["runs"][0]
        if run["state"] in states or time.monotonic() > deadline:
            return dict(run)
        time.sleep(0.1)


def _wait_recovered(client: Client, run_id: str, timeout_s: float = RUN_END_TIMEOUT_S) -> dict:
    deadline = time.monotonic() + timeout_s
    while True:
        runs = client.status()["runs"]
        found = [run for run in runs if run["run_id"] == run_id]
        if found and found[0]["state"] == "interrupted" and found[0]["finished_at"] is not None:
            return dict(found[0])
        if time.monotonic() > deadline:
            return dict(found[0]) if found else {"run_id": run_id, "state": "missing", "counts": {}, "drops": {}}
        time.sleep(0.2)


def _untabled(report: StoreReport) -> str:
    return f"untabled={report.untabled}" if report.untabled else ""


def table(rows: list[Row]) -> str:
    """The soak's table: one line per run per cycle."""
    head = (
        f"{'cyc':>3} {'fault':<17} {'run':<5} {'state':<11} {'deliv':>6} {'stored':>6} {'in_store':>8} "
        f"{'ping_ms':>7} {'rss_MB':>6} {'fds':>4} {'ok':<3} drops / note / problems"
    )
    lines = [head, "-" * len(head)]
    for r in rows:
        ok = "ok" if not r.problems else "BAD"
        extra = "; ".join(x for x in (r.drops, r.note, *r.problems) if x and x != "-") or "-"
        lines.append(
            f"{r.cycle:>3} {r.fault:<17} {r.role:<5} {r.state:<11} {r.delivered:>6} {r.stored:>6} {r.in_store:>8} "
            f"{r.ping_ms:>7.1f} {r.rss_mb:>6.1f} {r.fds:>4} {ok:<3} {extra}"
        )
    return "\n".join(lines)
