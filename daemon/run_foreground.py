"""``acqd run PROFILE``: one run in the foreground, a progress line on a terminal, signals as stop requests.

Exit status: 0 only when the run finished with every frame stored or accounted for (dropped frames are counted,
listed and allowed) and the store finalised; 1 when it failed or was aborted, or could not start; 2 when the
profile is invalid (its errors are printed as ``file:line: path: message``).

Design notes:
- SIGINT (Ctrl-C) or SIGTERM asks for a graceful stop (the queue is stored, the store finalised); a second one
  asks for an abort (the queue is discarded, the store closed); after a third, the next Ctrl-C quits at once (the
  worker, in its own session, still closes the store when it sees the run go silent).
- Signal handlers only count: the main loop turns counts into requests, so a handler never takes a lock.
- Logs go to stdout (JSON, or console lines on a terminal); the progress line and the final one-line result go
  to stderr.
- ``--resume RUN_ID`` appends to the profile's store, as the daemon's ``start`` with ``resume`` does
  (:mod:`daemon.run_resume`: the store must match the profile exactly; each image continues at a fresh row of
  storage objects, the gap recorded in ``acqd.resumes`` and the frame table). A foreground run keeps no journal,
  so RUN_ID (the run that wrote the store last, from its log lines) is recorded as given, and the time it was
  interrupted is unknown (null). Without it, an existing store is refused unless the profile overwrites it; the
  refusal says how to append instead.
"""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from types import FrameType
from typing import Any, TextIO

from daemon.errors import AcqdError, StoreExistsError
from daemon.log import LogFormat, configure
from daemon.profile import Profile, load_profile
from daemon.profile_paths import default_data_root
from daemon.progress import ProgressLine
from daemon.run import Run
from daemon.storage.settings_json import ResumeRequest
from daemon.strict_yaml import DocumentError

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_PROFILE = 2
POLL_S = 0.1


class SignalCounter:
    """Counts SIGINT and SIGTERM while installed (main thread only; elsewhere it counts nothing)."""

    def __init__(self) -> None:
        self.count = 0
        self._previous: dict[int, Any] = {}

    def _handler(self, _signum: int, _frame: FrameType | None) -> None:
        self.count += 1
        if self.count >= 3:
            signal.signal(signal.SIGINT, signal.default_int_handler)  # the next Ctrl-C quits at once

    @contextmanager
    def installed(self) -> Iterator[SignalCounter]:
        try:
            self._previous = {s: signal.signal(s, self._handler) for s in (signal.SIGINT, signal.SIGTERM)}
        except ValueError:  # not the main thread
            self._previous = {}
        try:
            yield self
        finally:
            for signum, handler in self._previous.items():
                signal.signal(signum, handler)


def run_command(args: argparse.Namespace, stderr: TextIO | None = None) -> int:
    """The ``acqd run`` subcommand."""
    err = stderr if stderr is not None else sys.stderr
    log_format: LogFormat = args.log_format
    configure(log_format, args.log_level)
    try:
        profile = load_profile(args.profile, args.data_root or default_data_root())
    except DocumentError as exc:
        print(str(exc), file=err)
        return EXIT_PROFILE
    try:
        resume = None if args.resume is None else ResumeRequest(args.resume)
    except AcqdError as exc:
        print(f"acqd run: --resume: {exc}", file=err)
        return EXIT_FAILED
    return run_foreground(profile, log_format=log_format, log_level=args.log_level, stderr=err, resume=resume)


def run_foreground(
    profile: Profile, *, log_format: str, log_level: str, stderr: TextIO, resume: ResumeRequest | None = None
) -> int:
    """Run ``profile`` (appending to its store with ``resume``) until it ends; returns the exit status."""
    run = Run(profile, log_format=log_format, log_level=log_level, resume=resume)
    signals = SignalCounter()
    with signals.installed():
        try:
            run.start()
        except StoreExistsError as exc:
            print(f"acqd run: could not start: {exc} To append to it instead, add --resume RUN_ID.", file=stderr)
            return EXIT_FAILED
        except AcqdError as exc:
            print(f"acqd run: could not start: {exc}", file=stderr)
            return EXIT_FAILED
        _follow(run, signals, ProgressLine(stderr) if stderr.isatty() else None)
    summary = run.summary or {}
    print(result_line(summary), file=stderr)
    return EXIT_OK if succeeded(summary) else EXIT_FAILED


def _follow(run: Run, signals: SignalCounter, progress: ProgressLine | None) -> None:
    handled = 0
    try:
        while not run.wait(POLL_S):
            if signals.count > handled:
                handled = signals.count
                if handled == 1:
                    run.request_stop()
                else:
                    run.request_abort()
            if progress is not None:
                progress.update(run.status())
    finally:
        if progress is not None:
            progress.close()


def succeeded(summary: Mapping[str, Any]) -> bool:
    """Finished, every frame stored or accounted for, the store finalised."""
    return (
        summary.get("outcome") == "finished" and bool(summary.get("balanced")) and bool(summary.get("store_finalized"))
    )


def result_line(summary: Mapping[str, Any]) -> str:
    """One line saying how the run ended: outcome, frames stored, where, rate, drops, the first error."""
    outcome = summary.get("outcome", "failed")
    stored, delivered = summary.get("stored", 0), summary.get("delivered", 0)
    rate = summary.get("mb_per_s")
    timing = f"{summary.get('duration_s', 0):.1f} s" + (f", {rate:.1f} MB/s" if rate is not None else "")
    frames = f"{stored} frames stored" if stored == delivered else f"{stored} of {delivered} frames stored"
    drops = {reason: n for reason, n in summary.get("dropped", {}).items() if n}
    dropped = "dropped: none" if not drops else "dropped " + ", ".join(f"{n} {r}" for r, n in drops.items())
    line = f"acqd run: {outcome}: {frames} in {summary.get('store', '?')} ({timing}); {dropped}"
    errors = summary.get("errors") or []
    if errors:
        more = f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""
        line += f"; error: {errors[0]}{more}"
    return line
