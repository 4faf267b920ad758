"""The acquisition side of the frame stream: a bound ROUTER that feeds one storage worker from a bounded queue.

Usage (the pipeline)::

    sender = FrameSender(SenderSettings(endpoint, run_id, config={...}))
    worker = sender.wait_for_worker(timeout_s=10)          # None if no worker said HELLO in time
    ready = sender.wait_until_ready(timeout_s=30)          # the worker opened its store and granted credit
    reason = sender.offer(frame, key)                      # camera thread; None = queued, else a DropReason
    result = sender.finish(timeout_s=30)                   # END -> FINAL; in flight is 0 afterwards
    sender.close()

Design notes:
- One sender serves one worker link (fan-out = one sender per worker, each with its own endpoint and queue). The
  first HELLO of our protocol version is welcomed; others are REFUSEd with a reason and counted.
- Threads: the camera thread only calls :meth:`offer` (queue put: never blocks in DROP mode). One I/O thread owns
  the socket: it sends frames while the worker's credit lasts, handles CREDIT/STORED/LOST/FINAL, sends heartbeats
  and checks liveness (:class:`~daemon.ipc.socket_thread.SocketThread`). Other threads leave requests under
  the lock and wake it.
- Books: queue, ledger and state share one re-entrant lock, so :meth:`stats` always balances. Pixels are sent
  with ``copy=False`` (ZeroMQ keeps a reference to the frame's buffer until it is on the wire).
- Worker lost (no message for ``liveness_timeout_s``, the worker unreachable, FINAL before END, ``finish``
  timing out, :meth:`worker_lost` from the pipeline when the child exits, or ``close`` before the end): every
  unacknowledged and queued frame is counted ``worker_lost`` and listed in :attr:`SenderStats.lost`; later offers
  return ``DropReason.WORKER_LOST``. Losing the worker is final for a sender.
- Credit and the frame ring: :class:`~daemon.ipc.send_window.SendWindow` (frames go out as the worker's credit
  allows, through its shared-memory ring when it offered one on this host, else inline); frames that already lie
  in a shared region the worker mapped go by reference (:mod:`daemon.ipc.shared_region`).
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from typing import Any

import zmq

from daemon.errors import ConfigError, ProtocolError, StreamClosedError
from daemon.ipc.accounting import DropReason, ThrottledCounter
from daemon.ipc.delivery_ledger import DeliveryLedger
from daemon.ipc.frame import Frame
from daemon.ipc.frame_queue import FrameQueue, PutResult
from daemon.ipc.handshake import read_hello, send_refusal
from daemon.ipc.header import FrameHeader
from daemon.ipc.messages import (
    MAX_CONTROL_BYTES,
    ControlMessage,
    Credit,
    End,
    Final,
    Heartbeat,
    Lost,
    RegionReply,
    Stored,
    Welcome,
    decode_control,
    encode_control,
)
from daemon.ipc.send_window import SendWindow
from daemon.ipc.socket_thread import Context, SocketThread
from daemon.ipc.stream_settings import SenderSettings
from daemon.ipc.stream_status import FinishResult, SenderState, SenderStats, WorkerInfo
from daemon.ipc.wire import MessageKind, decode_prefix
from daemon.log import get_logger

_POLL_MAX_S = 0.05
_SEND_BATCH = 64
_RECV_BATCH = 256


@dataclass(frozen=True, slots=True)
class _Outgoing:
    frame: Frame
    key: str
    header: bytes  # encoded with seq 0: the real one is patched in when it is sent

    @property
    def nbytes(self) -> int:
        return self.frame.nbytes


class FrameSender:
    """Bind ``settings.endpoint`` and stream offered frames to the one worker that connects."""

    def __init__(self, settings: SenderSettings, *, context: Context | None = None) -> None:
        self._settings = settings
        self._log = get_logger("daemon.ipc.frame_sender", run_id=settings.run_id)
        self._io = SocketThread(
            zmq.ROUTER,
            settings.endpoint,
            bind=True,
            name="acqd-frame-sender",
            linger_ms=0,  # everything that matters is acknowledged
            options={
                zmq.ROUTER_MANDATORY: 1,  # sending to a vanished worker fails at once (EHOSTUNREACH)
                zmq.SNDHWM: 0,  # credit bounds what is queued towards the worker
                zmq.MAXMSGSIZE: MAX_CONTROL_BYTES + 1024,  # a worker only sends control messages
            },
            context=context,
        )
        self.endpoint = self._io.endpoint
        self._lock = threading.RLock()
        self._queue: FrameQueue[_Outgoing] = FrameQueue(
            settings.queue_max_bytes,
            max_frames=settings.queue_max_frames,
            mode=settings.queue_mode,
            block_timeout_s=settings.block_timeout_s,
            lock=self._lock,
            on_ready=self._io.wake,
        )
        self._ledger = DeliveryLedger()
        self._junk = ThrottledCounter(self._log, "frame_stream_junk")
        self._lost_reports = ThrottledCounter(self._log, "frame_stream_frames_lost")
        self._state = SenderState.WAITING
        self._peer: bytes | None = None
        self._worker: WorkerInfo | None = None
        self._window = SendWindow()  # credit under the lock; its ring used by the I/O thread only
        self._refused = 0
        self._lost_cause: str | None = None
        self._finish_requested = False
        self._end_sent = False
        self._summary: dict[str, Any] | None = None
        self._welcomed = threading.Event()
        self._ready = threading.Event()  # the worker granted credit: its store is open
        self._done = threading.Event()
        self._last_heard = self._last_sent = 0.0
        poll_s = min(settings.heartbeat_interval_s / 2, _POLL_MAX_S)
        self._io.start(self._step, self._drain_socket, self._on_io_error, poll_s)
        self._log.info("frame_stream_bound", endpoint=self.endpoint)

    # ---- caller side -------------------------------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        return self._io.closed

    def wait_for_worker(self, timeout_s: float) -> WorkerInfo | None:
        """The welcomed worker, waiting up to ``timeout_s``; None if none came (or the stream ended first)."""
        self._welcomed.wait(timeout_s)
        return self._worker

    def wait_until_ready(self, timeout_s: float) -> bool:
        """True once the welcomed worker granted its first credit (its store is open, frames will flow); False on
        timeout, or when the worker was lost first (its FINAL, if any, is in :meth:`finish`'s result)."""
        self._ready.wait(timeout_s)
        with self._lock:
            return self._ready.is_set() and self._state in (SenderState.STREAMING, SenderState.FINISHING)

    @property
    def lost_summary(self) -> dict[str, Any] | None:
        """The FINAL summary of a worker that ended before END (e.g. it could not open its store), else None."""
        with self._lock:
            return self._summary if self._state is SenderState.WORKER_LOST else None

    def offer(self, frame: Frame, key: str = "") -> DropReason | None:
        """Queue ``frame`` for array ``key``: None if queued, else why it was dropped (it is counted).

        Never blocks in DROP mode. Raises ConfigError for a frame the wire cannot carry and StreamClosedError
        after :meth:`finish` or :meth:`close`.
        """
        if self._io.closed or self._finish_requested:
            raise StreamClosedError("frame stream is finishing or closed: no more frames can be offered.")
        if not frame.pixels.flags.c_contiguous:
            raise ConfigError(f"frame {frame.frame_id} pixels must be C-contiguous. Got a strided array instead.")
        header = FrameHeader.for_frame(frame, run_id=self._settings.run_id, key=key, seq=0).encode()
        result = self._queue.put(_Outgoing(frame, key, header))
        if result is PutResult.ACCEPTED:
            return None
        if result is PutResult.FULL:
            return DropReason.QUEUE_FULL
        with self._lock:
            if self._state is SenderState.WORKER_LOST:
                self._ledger.record_drop(DropReason.WORKER_LOST)
                return DropReason.WORKER_LOST
        raise StreamClosedError("frame stream is finishing or closed: no more frames can be offered.")

    def record_drop(self, reason: DropReason, count: int = 1) -> None:
        """Count frames the pipeline dropped before offering them (camera_gap, incomplete), so one balance holds."""
        if reason not in (DropReason.CAMERA_GAP, DropReason.INCOMPLETE):
            raise ConfigError(f"record_drop reason must be camera_gap or incomplete. Got {reason!r} instead.")
        if not isinstance(count, int) or count < 0:
            raise ConfigError(f"record_drop count must be an integer >= 0. Got {count!r} instead.")
        with self._lock:
            self._ledger.record_drop(reason, count)

    def worker_lost(self, cause: str) -> None:
        """Declare the worker lost (e.g. its process exited): every frame not yet stored is counted lost."""
        self._lose(cause)
        self._io.wake()

    def discard_queued(self) -> list[tuple[int, str]]:
        """Abort: drop every frame still queued (never sent), counted ``aborted``; returns their ``(frame_id, key)``.

        Frames already sent are unaffected (the worker may still store them). The caller stops offering first;
        anything offered later is queued as usual (discard again, or :meth:`finish`)."""
        with self._lock:
            items = self._queue.drain()
            self._ledger.discard_queued(len(items))
        self._io.wake()  # when finishing, END can go now
        return [(item.frame.frame_id, item.key) for item in items]

    def finish(self, timeout_s: float) -> FinishResult:
        """Send what is queued, then END, and wait for FINAL; on timeout the worker is declared lost.

        Afterwards nothing is in flight. Idempotent. Re-raises an error that stopped the I/O thread.
        """
        with self._lock:
            self._finish_requested = True
            self._queue.close()
            if self._state is SenderState.STREAMING:
                self._state = SenderState.FINISHING
        self._io.wake()
        if not self._done.wait(timeout_s):
            self._lose("finish_timeout")
        if self._io.error is not None:
            raise self._io.error
        stats = self.stats()
        return FinishResult(stats.state, self._summary, stats)

    def stats(self) -> SenderStats:
        with self._lock:
            queue = self._queue.stats()
            ledger = self._ledger
            return SenderStats(
                state=self._state,
                balance=ledger.balance(queue),
                frames_sent=ledger.sent_frames,
                bytes_sent=ledger.sent_bytes,
                frames_stored=ledger.stored_frames,
                bytes_stored=ledger.stored_bytes,
                unacked_frames=ledger.unacked_frames,
                unacked_bytes=ledger.unacked_bytes,
                queued_frames=queue.frames,
                queued_bytes=queue.nbytes,
                queue_peak_bytes=queue.peak_nbytes,
                credit_frames=self._window.frames,
                credit_bytes=self._window.nbytes,
                worker=self._worker,
                lost_cause=self._lost_cause,
                lost=ledger.lost,
                refused_peers=self._refused,
                junk=self._junk.snapshot(),
                frames_via_ring=self._window.ring_frames,
                frames_via_region=self._window.region_frames,
            )

    def close(self, timeout_s: float = 5.0) -> None:
        """Stop the I/O thread, close the socket (and the context if it is ours). Idempotent.

        Frames still in flight (no :meth:`finish`, or it failed) are counted lost with cause ``closed``.
        """
        if self._io.closed:
            return
        self._lose("closed")
        if not self._io.close(timeout_s):
            self._log.error("frame_sender_thread_stuck", timeout_s=timeout_s)
        else:  # the I/O thread, the ring's only user, has stopped
            self._window.close()

    # ---- books (any thread, under the lock) --------------------------------------------------------------------

    def _lose(self, cause: str) -> None:
        with self._lock:
            if self._state in (SenderState.FINISHED, SenderState.WORKER_LOST):
                return
            previous = self._state
            self._state = SenderState.WORKER_LOST
            self._lost_cause = cause
            self._queue.close()
            unacked = self._ledger.lose_unacked()
            queued = self._ledger.lose_queued((item.frame.frame_id, item.key) for item in self._queue.drain())
            self._window.clear()
        self._welcomed.set()
        self._ready.set()
        self._done.set()
        if previous is not SenderState.WAITING or unacked or queued:
            self._log.warning(
                "frame_stream_worker_lost", cause=cause, unacked_lost=unacked, queued_lost=queued, worker=self._worker
            )

    # ---- I/O thread --------------------------------------------------------------------------------------------

    def _step(self, now: float) -> None:
        self._send_frames()
        self._tick(now)

    def _on_io_error(self, exc: Exception) -> None:
        self._log.error("frame_sender_failed", error=repr(exc))
        self._lose("sender_failed")

    def _tick(self, now: float) -> None:
        if self._state not in (SenderState.STREAMING, SenderState.FINISHING):
            return
        if now - self._last_heard > self._settings.liveness_timeout_s:
            self._lose("liveness_timeout")
        elif now - self._last_sent >= self._settings.heartbeat_interval_s:
            self._send_control(Heartbeat())

    def _send_frames(self) -> None:
        for _ in range(_SEND_BATCH):
            with self._lock:
                if self._state not in (SenderState.STREAMING, SenderState.FINISHING):
                    return
                if not self._queue:
                    if self._state is SenderState.FINISHING and not self._end_sent:
                        self._end_sent = True
                        self._send_control(End(frames=self._ledger.sent_frames, next_seq=self._ledger.next_seq))
                    return
                if not self._window.allows(self._queue.head_nbytes()):
                    return  # no credit, or the ring has no room yet (the worker frees it as it consumes)
                item = self._queue.get_nowait()
                if item is None:
                    return
                seq = self._ledger.send(item.frame.frame_id, item.key, item.nbytes)
                self._window.spend(item.nbytes)
            payload = self._window.payload(seq, item.frame.pixels)
            for announcement in self._window.take_announcements():
                self._send_control(announcement)
            self._send([FrameHeader.with_seq(item.header, seq), *payload])

    def _send_control(self, message: ControlMessage) -> None:
        self._send([encode_control(message)])

    def _send(self, parts: list[Any]) -> None:
        peer = self._peer
        if peer is None:
            return
        try:
            self._io.socket.send_multipart([peer, *parts], flags=zmq.NOBLOCK, copy=False)
        except zmq.ZMQError as exc:
            self._lose("worker_unreachable" if exc.errno == zmq.EHOSTUNREACH else f"send_failed: {exc}")
            return
        self._last_sent = time.monotonic()

    def _drain_socket(self) -> None:
        for _ in range(_RECV_BATCH):
            try:
                parts = self._io.socket.recv_multipart(flags=zmq.NOBLOCK)
            except zmq.Again:
                return
            self._handle(parts)

    def _handle(self, parts: list[bytes]) -> None:
        if len(parts) != 2:
            self._junk.count("part_count", parts=len(parts))
            return
        peer, body = parts
        try:
            version, kind = decode_prefix(body)
            if kind is MessageKind.HELLO:
                self._on_hello(peer, version, body)
                return
            if peer != self._peer:
                self._junk.count("unknown_peer", kind=kind.name)
                return
            self._last_heard = time.monotonic()
            self._on_control(decode_control(body))
        except ProtocolError as exc:
            self._junk.count("malformed", error=str(exc))

    def _on_control(self, message: ControlMessage) -> None:
        if isinstance(message, Credit):
            with self._lock:
                self._window.add(message.frames, message.nbytes)
            if not self._ready.is_set():
                self._ready.set()
            self._window.consumed_below(message.consumed_seq)
        elif isinstance(message, Stored):
            self._on_stored(message.next_seq)
        elif isinstance(message, Lost):
            self._on_lost(message)
        elif isinstance(message, Final):
            self._on_final(message)
        elif isinstance(message, RegionReply):
            self._on_region_reply(message)
        elif not isinstance(message, Heartbeat):
            self._junk.count("unexpected_kind", kind=message.KIND.name)

    def _on_region_reply(self, reply: RegionReply) -> None:
        if not self._window.region_replied(reply):
            self._junk.count("unasked_region_reply", region_id=reply.region_id)
        elif reply.mapped:
            self._log.info("frame_stream_region_mapped", region_id=reply.region_id)
        else:
            self._log.info("frame_stream_region_unused", region_id=reply.region_id, reason=reply.reason)

    def _on_stored(self, next_seq: int) -> None:
        with self._lock:
            if next_seq > self._ledger.next_seq:
                self._junk.count("stored_beyond_sent", next_seq=next_seq, sent=self._ledger.next_seq)
                return
            if self._state is not SenderState.WORKER_LOST:
                self._ledger.stored_below(next_seq)

    def _on_lost(self, message: Lost) -> None:
        with self._lock:
            if self._state is SenderState.WORKER_LOST:
                return
            frames, nbytes = self._ledger.lose_seqs(message.first_seq, message.count)
            self._window.add(frames, nbytes)  # a frame reported LOST gives its credit back here, not through CREDIT
        self._window.freed(message.first_seq, message.count)
        self._lost_reports.count(message.reason, first_seq=message.first_seq, count=frames)

    def _on_final(self, message: Final) -> None:
        self._on_stored(message.next_seq)
        if not self._end_sent:
            self._summary = message.summary
            self._lose("worker_finished_early")
            return
        with self._lock:
            if self._state is not SenderState.FINISHING:
                self._junk.count("unexpected_final", state=self._state.value)
                return
            self._summary = message.summary
            unstored = self._ledger.lose_unacked()  # FINAL: the worker will store nothing more
            self._state = SenderState.FINISHED
        stats = self.stats()
        self._log.info(
            "frame_stream_finished",
            delivered=stats.balance.delivered,
            stored=stats.frames_stored,
            lost_at_final=unstored,
            dropped=stats.balance.dropped.total,
            ring_frames=stats.frames_via_ring,
            region_frames=stats.frames_via_region,
            inline_frames=stats.frames_sent - stats.frames_via_ring - stats.frames_via_region,
        )
        self._done.set()

    def _on_hello(self, peer: bytes, version: int, body: bytes) -> None:
        hello = read_hello(version, body)
        if isinstance(hello, str):
            self._refuse(peer, hello)
            return
        if peer == self._peer:
            self._junk.count("duplicate_hello", worker_id=hello.worker_id)
            return
        with self._lock:
            if self._state is not SenderState.WAITING:
                state = self._state
            else:
                state = None
                self._peer = peer
                self._worker = WorkerInfo(hello.worker_id, hello.pid)
                self._state = SenderState.FINISHING if self._finish_requested else SenderState.STREAMING
                self._last_heard = time.monotonic()
        if state is not None:
            self._refuse(peer, f"the stream already has a worker or has ended (state {state.value})")
            return
        if hello.ring is not None:
            self._attach_ring(hello.ring)
        settings = self._settings
        welcome = Welcome(settings.run_id, settings.config, settings.heartbeat_interval_s, settings.liveness_timeout_s)
        self._send_control(welcome)
        self._welcomed.set()
        self._log.info("frame_stream_worker_welcomed", worker_id=hello.worker_id, pid=hello.pid, sender_pid=os.getpid())

    def _attach_ring(self, offer: dict[str, Any]) -> None:
        """Use the worker's frame ring if it is on this host and passes the checks; else frames go inline."""
        try:
            self._window.attach_ring(offer)
        except ProtocolError as exc:
            self._log.info("frame_stream_ring_unused", reason=str(exc))
            return
        self._log.info("frame_stream_ring_attached", path=offer.get("path"), nbytes=offer.get("nbytes"))

    def _refuse(self, peer: bytes, reason: str) -> None:
        with self._lock:
            self._refused += 1
        send_refusal(self._io.socket, peer, reason, self._log)
