"""The storage worker: the process that drains a run's frame stream into one Zarr store.

Usage::

    python -m daemon.storage.worker --connect ENDPOINT [--worker-id ID] [--log-format json|console|auto]
                                    [--log-level INFO]
    acqd worker --connect tcp://HOST:PORT ...        # the same, for a sender that waits for an external worker

Lifecycle: connect to the sender (HELLO -> WELCOME, whose config is :func:`~daemon.storage.settings_json.
worker_config`'s JSON), open the :class:`~daemon.storage.stream.ZarrStream` and the per-frame tables
(:mod:`daemon.storage.frame_table`), and only then grant the sender its credit window (clearing an ``overwrite``
store can take seconds; the run starts its cameras once credit came, so no frame waits on it), then per frame:
append it to its array (``key``), give its credit back (``appended``), add its table row, and acknowledge
(``stored``) whenever the array's stored count moves.

How it ends (exit status):
- END from the sender: close the stream (finalises everything), complete the frame tables, send FINAL (summary
  below) and exit 0, or 1 if closing the store failed (FINAL says why).
- A storage error on append: the frame is rejected (reported LOST with reason ``storage_error``, so the sender
  counts it), the store is closed (what was stored stays readable), FINAL carries the error, exit 1.
- The sender is lost (or never answered, or refused us): the store is closed, no FINAL, exit 3.
- SIGTERM or SIGINT: the frames already received are stored, the store is closed, FINAL says the worker was
  stopped, exit 128 + the signal number (143 for SIGTERM).
- Bad arguments or environment: exit 2.

FINAL summary: ``{"frames_appended": {key: n}, "frames_stored": {key: n}, "bytes_in": n, "bytes_written": n,
"objects_written": n, "error": null | "message", "frame_table": {key: rows}}`` (bytes and objects include the frame
tables'; ``frame_table`` is ``{}`` when the run asked for no table). A resumed run (config ``resume``, see
:mod:`daemon.storage.append_plan`) adds ``"resume": {key: {<the acqd.resumes record>, "store_frames": n}}``:
``store_frames`` is the frame slots the image's store claims (the interrupted run's claim, then, once this run
stored a frame, the gap and this run's stored frames). The frame table's row count is the store's, not this run's.

Environment (test only): ``ACQD_WORKER_APPEND_DELAY_S`` makes the worker sleep that many seconds before each
append, to play a slow store in tests (a real part cannot be made slow on demand). Never set it in production.

Design notes:
- The frame loop is the storage side's hot path (up to ~250 frames/s of 8 MiB): per frame it makes O(1) calls;
  the received pixels are a zero-copy view that ``ZarrStream.append`` copies into its chunk buffers, and the
  frame table writes in the background.
- Frames the engine refuses as not fitting (another shape, dtype or key; a fixed-size array already full) are
  rejected with reason ``invalid_frame`` and the stream goes on; a storage error is sticky, so the worker ends.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from types import FrameType
from typing import Any

import structlog

from daemon.errors import ConfigError, PeerLost, ProtocolError, StorageError
from daemon.ipc.accounting import ThrottledCounter
from daemon.ipc.frame_receiver import FrameReceiver
from daemon.ipc.received_frame import EndOfStream, ReceivedFrame
from daemon.ipc.stream_settings import ReceiverSettings
from daemon.log import configure, get_logger
from daemon.storage.append_plan import AppendPlan, plan_append, record_resume, resume_record
from daemon.storage.frame_table import FrameTable, FrameTables
from daemon.storage.lent_store import LentStore
from daemon.storage.location import open_store
from daemon.storage.settings_json import ResumeRequest, parse_worker_config
from daemon.storage.sink import Store
from daemon.storage.stream import ZarrStream
from daemon.storage.worker_options import append_delay_s, build_parser, ring_mib_of

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_PEER_LOST = 3
REJECT_STORAGE = "storage_error"
REJECT_INVALID = "invalid_frame"
_IDLE_S = 0.1  # recv timeout: how often an idle worker reports what storage finished in the background
_ALL_KEYS_EVERY = 32  # frames between checks of every array's stored count (not only the current frame's)

log = get_logger("daemon.storage.worker")  # not __name__: "__main__" when run with -m


class StorageWorker:
    """One worker run: connect, open the store, store frames until the stream ends; :meth:`run` returns the status."""

    def __init__(self, receiver: FrameReceiver, *, append_delay_s: float = 0.0, window_frames: int = 64) -> None:
        self._rx = receiver
        self._delay_s = append_delay_s
        self._window_frames = window_frames
        self._store: Store | None = None
        self._stream: ZarrStream | None = None
        self._tables: FrameTables | None = None
        self._table_of: dict[str, FrameTable] = {}
        self._appended: dict[str, int] = {}
        self._stored: dict[str, int] = {}
        self._error: StorageError | None = None
        self._stop_signal: int | None = None
        self._resumed: dict[str, dict[str, Any]] = {}  # a resumed run: the record written per array
        self._rejected = ThrottledCounter(log, "worker_frames_rejected")

    def request_stop(self, signum: int) -> None:
        """Stop after storing the frames already received (safe to call from a signal handler)."""
        self._stop_signal = signum

    def run(self) -> int:
        try:
            welcome = self._rx.connect(grant=False)  # no frame comes before the store is ready
        except (PeerLost, ProtocolError) as exc:
            log.error("worker_connect_failed", error=str(exc))
            return EXIT_PEER_LOST
        structlog.contextvars.bind_contextvars(run_id=welcome.run_id)
        try:
            self._open(welcome.config, welcome.run_id)
        except (ConfigError, StorageError) as exc:
            log.error("worker_open_failed", error=str(exc))
            return self._send_final(self._summary(str(exc)), EXIT_FAILED)
        self._rx.grant()
        return self._loop()

    # -- setup --------------------------------------------------------------------------------------------------

    def _open(self, config: Mapping[str, Any], run_id: str) -> None:
        parsed = parse_worker_config(config)
        settings = parsed.stream
        keys = [array.output_key for array in settings.arrays]
        self._appended = dict.fromkeys(keys, 0)
        self._stored = dict.fromkeys(keys, 0)
        store = self._store = open_store(settings.store_path, settings.s3)
        try:
            store.lock()  # one writer per store, until _close_store (a second one is refused, nothing written)
            plan = None if parsed.resume is None else plan_append(store, settings)
            self._stream = ZarrStream(settings, store=LentStore(store), append=plan)
            if plan is not None and parsed.resume is not None:
                self._record_resume(store, plan, run_id, parsed.resume)
            if parsed.frame_table:
                self._tables = FrameTables(store, settings.version_enum, keys, resume=plan)
                self._table_of = {key: self._tables.table(key) for key in keys}
        except (ConfigError, StorageError):
            closing = self._close_store()
            if closing is not None:
                log.warning("worker_store_close_failed", error=str(closing))
            raise
        log.info("worker_store_opened", store=store.url, arrays=keys, frame_table=parsed.frame_table)

    def _record_resume(self, store: Store, plan: AppendPlan, run_id: str, resume: ResumeRequest) -> None:
        """Write each image's ``acqd.resumes`` record before any frame (a crash later still leaves it)."""
        now = time.time()
        for key, image in plan.images.items():
            record = resume_record(
                image, run_id=run_id, resumes=resume.resumes, interrupted_at=resume.interrupted_at, resumed_at=now
            )
            record_resume(store, plan.version, key, record)
            self._resumed[key] = record
            log.info("store_resumed", store=store.url, key=key, **record)

    # -- the frame loop -----------------------------------------------------------------------------------------

    def _loop(self) -> int:
        frames = 0
        while self._stop_signal is None:
            try:
                item = self._rx.recv(timeout_s=_IDLE_S)
            except PeerLost as exc:
                log.error("worker_sender_lost", error=str(exc))
                error = self._close_store()
                log.info("worker_finished", status=EXIT_PEER_LOST, **self._summary(str(error or exc)))
                return EXIT_PEER_LOST
            if type(item) is ReceivedFrame:
                self._on_frame(item)
                if self._error is not None:
                    return self._conclude(EXIT_FAILED)
                frames += 1
                if frames % _ALL_KEYS_EVERY == 0:
                    self._report_stored()
            elif item is None:
                self._report_stored()
            else:
                assert isinstance(item, EndOfStream)
                return self._conclude(EXIT_OK)
        return self._stop()

    def _on_frame(self, item: ReceivedFrame) -> None:
        if self._delay_s:
            time.sleep(self._delay_s)
        if not self._append(item):
            return
        key = item.key
        self._rx.appended(item)
        self._appended[key] += 1
        table = self._table_of.get(key)
        if table is not None:
            head = item.header
            table.add(head.frame_id, head.device_timestamp_ns, head.host_time_ns, head.flags)
        assert self._stream is not None
        stored = self._stream.frames_stored(key)
        if stored != self._stored[key]:
            self._stored_moved(key, stored)

    def _append(self, item: ReceivedFrame) -> bool:
        """Hand ``item`` to the store; False (and the frame rejected) if the store did not take it."""
        assert self._stream is not None
        error: ConfigError | StorageError
        try:
            self._stream.append(item.pixels, item.key)
            return True
        except ConfigError as exc:
            reason, error = REJECT_INVALID, exc
        except StorageError as exc:
            reason, error = REJECT_STORAGE, exc
            self._error = exc
        if item.key in self._appended and self._stream.frames_appended(item.key) > self._appended[item.key]:
            return True  # the frame went into the store before the error surfaced
        self._rx.rejected(item, reason)
        self._rejected.count(reason, key=item.key, frame_id=item.header.frame_id, error=str(error))
        return False

    def _stored_moved(self, key: str, stored: int) -> None:
        stored = min(stored, self._appended[key])
        self._stored[key] = stored
        self._rx.stored(key, stored)
        if self._tables is not None:
            self._tables.stored(key, stored)
            self._tables.sync()

    def _report_stored(self) -> None:
        """Acknowledge what storage finished in the background (idle, or every few frames)."""
        assert self._stream is not None
        for key, before in self._stored.items():
            stored = self._stream.frames_stored(key)
            if stored != before:
                self._stored_moved(key, stored)
        if self._tables is not None:
            self._tables.sync()

    # -- endings ------------------------------------------------------------------------------------------------

    def _stop(self) -> int:
        """A signal asked us to stop: store what was already received (at most a window), then conclude."""
        signum = self._stop_signal or signal.SIGTERM
        log.info("worker_stopping", signal=signal.Signals(signum).name)
        for _ in range(self._window_frames):
            try:
                item = self._rx.recv(timeout_s=0)
            except PeerLost:
                break
            if isinstance(item, EndOfStream):
                return self._conclude(EXIT_OK)
            if item is None:
                break
            self._on_frame(item)
            if self._error is not None:
                return self._conclude(EXIT_FAILED)
        return self._conclude(128 + signum, f"stopped by {signal.Signals(signum).name} before the end of the stream")

    def _conclude(self, status: int, reason: str | None = None) -> int:
        """Close the store, acknowledge every stored frame and send FINAL; ``reason`` when not a storage error."""
        error = self._close_store()
        if error is not None:
            status = EXIT_FAILED
        message = str(error) if error is not None else reason
        return self._send_final(self._summary(message), status)

    def _close_store(self) -> StorageError | None:
        """Close the stream, then the tables, then the store (each finalises what was stored); the first error."""
        errors: list[StorageError] = [] if self._error is None else [self._error]
        if self._stream is not None:
            _collect(errors, self._stream.close)
            for key in self._stored:
                self._stored[key] = min(self._stream.frames_stored(key), self._appended[key])
                self._rx.stored(key, self._stored[key])
        if self._tables is not None:
            for key, stored in self._stored.items():
                self._tables.stored(key, stored)
            _collect(errors, self._tables.close)
        if self._store is not None:
            _collect(errors, self._store.close)
        return errors[0] if errors else None

    def _summary(self, error: str | None) -> dict[str, Any]:
        stats = self._stream.stats() if self._stream is not None else None
        tables = self._tables
        summary = {
            "frames_appended": dict(self._appended),
            "frames_stored": dict(self._stored),
            "bytes_in": stats.bytes_in if stats is not None else 0,
            "bytes_written": (stats.bytes_written if stats else 0) + (tables.bytes_written if tables else 0),
            "objects_written": (stats.objects_finalized if stats else 0) + (tables.objects_written if tables else 0),
            "error": error,
            "frame_table": tables.claimed if tables is not None else {},
        }
        if self._resumed:
            summary["resume"] = {
                key: {**record, "store_frames": _store_frames(record, self._stored[key])}
                for key, record in self._resumed.items()
            }
        return summary

    def _send_final(self, summary: dict[str, Any], status: int) -> int:
        try:
            self._rx.finish(summary)
        except PeerLost as exc:
            log.error("worker_final_not_sent", error=str(exc))
            status = status if status != EXIT_OK else EXIT_PEER_LOST
        log.info("worker_finished", status=status, **summary)
        return status


def _store_frames(record: Mapping[str, Any], stored: int) -> int:
    """The frame slots a resumed image's store claims: the gap is claimed only once a frame after it is stored."""
    return int(record["at_index"]) + stored if stored else int(record["claimed_before"])


def _collect(errors: list[StorageError], close: Callable[[], None]) -> None:
    try:
        close()
    except StorageError as exc:
        errors.append(exc)


# -- command line ---------------------------------------------------------------------------------------------


def run_from_args(args: argparse.Namespace) -> int:
    """Configure logging, connect to ``args.connect`` and store its frames until the stream ends."""
    configure(args.log_format, args.log_level)
    try:
        delay = append_delay_s(os.environ)
        ring_mib = ring_mib_of(args.ring_mib, os.environ)
        worker_id = args.worker_id or f"worker-{os.getpid()}"
        settings = ReceiverSettings(args.connect, worker_id=worker_id, ring_bytes=ring_mib << 20)
    except ConfigError as exc:
        print(f"acqd worker: {exc}", file=sys.stderr)
        return EXIT_USAGE
    structlog.contextvars.bind_contextvars(worker_id=settings.worker_id)
    log.info("worker_started", endpoint=settings.endpoint, pid=os.getpid(), append_delay_s=delay or None)
    receiver = FrameReceiver(settings)
    worker = StorageWorker(receiver, append_delay_s=delay, window_frames=settings.window_frames)
    try:
        with _signals_stop(worker.request_stop):
            return worker.run()
    finally:
        receiver.close()


@contextmanager
def _signals_stop(stop: Callable[[int], None]) -> Iterator[None]:
    """Turn SIGTERM and SIGINT into ``stop(signum)`` while inside (main thread only; elsewhere a no-op)."""

    def handler(signum: int, _frame: FrameType | None) -> None:
        stop(signum)

    try:
        previous = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGINT)}
    except ValueError:  # not the main thread: signals stay as they are
        previous = {}
    try:
        yield
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)


def main(argv: Sequence[str] | None = None) -> int:
    """The worker process's entry point; returns the exit status."""
    return run_from_args(build_parser().parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
