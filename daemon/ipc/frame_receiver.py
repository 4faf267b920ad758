"""The worker side of the frame stream: a DEALER that receives frames without copying and acknowledges storage.

Usage (the worker process)::

    rx = FrameReceiver(ReceiverSettings(endpoint, worker_id="w1"))
    welcome = rx.connect(grant=False)               # HELLO -> WELCOME (run id, the pipeline's config JSON)
    stream = open_the_store(welcome.config)         # may take seconds (clearing an old store): heartbeats go on
    rx.grant()                                      # the initial credit window: frames start to flow
    while True:
        item = rx.recv(timeout_s=0.5)               # ReceivedFrame | EndOfStream | None; raises PeerLost
        if isinstance(item, ReceivedFrame):
            stream.append(item.pixels, key=item.key)
            rx.appended(item)                       # gives its credit back (or rx.rejected(item, reason))
            rx.stored(item.key, stream.frames_stored(item.key))
        elif isinstance(item, EndOfStream):
            stream.close(); rx.stored(key, stream.frames_stored(key)) for each key
            rx.finish(summary)                      # STORED + FINAL
            break
    rx.close()

Design notes:
- ``pixels`` is a read-only numpy view of the ZeroMQ message (``np.frombuffer``, no copy); it stays valid as long
  as the :class:`ReceivedFrame` is referenced. With a frame ring (:mod:`daemon.ipc.frame_ring`, offered in HELLO
  unless ``ring_bytes`` is 0) it is a view of the ring instead, valid only until the frame is :meth:`appended` or
  :meth:`rejected`: the worker copies it into its chunk buffers before either. A frame the sender found in a
  shared region (:mod:`daemon.ipc.shared_region`: it announced the region with REGION, this worker mapped it
  read-only and said so in REGION_REPLY) is a view of that region, under the same rule.
- One I/O thread owns the socket once :meth:`connect` returned: it receives, sends heartbeats (so a worker busy
  closing its store for seconds still looks alive), checks the sender's liveness, and sends what the worker's
  thread left under the lock (LOST, STORED, CREDIT, FINAL, in that order, so a STORED never overtakes the LOST of
  a frame below it). Credit is returned in batches of a quarter window (of the ring, when it is smaller), and
  with a frame ring (or shared regions) also whenever the worker has consumed all it received (the sender waits
  for ring space it frees; the I/O thread's turn, <= 50 ms, bounds that wait); STORED goes out at once when it
  moved that much, else on the I/O thread's next turn (at most a poll interval, <= 50 ms, later).
- The initial credit window goes out at :meth:`connect`, or, after ``connect(grant=False)``, with :meth:`grant`
  once the worker's store is ready (heartbeats flow meanwhile): the sender's ``wait_until_ready`` returns then,
  and a run starts its cameras only after it.
- Sequence numbers are contiguous on a link: a jump is a transit loss, reported LOST at once (reason
  ``transit_gap``); a jump larger than the window, a duplicate, or a frame of another run is junk (counted).
- After the sender stays silent for its ``liveness_timeout_s`` (from WELCOME), :meth:`recv` hands out the frames
  already received, then raises :class:`~daemon.errors.PeerLost`.
"""

from __future__ import annotations

import json
import os
import queue
import threading
import time
from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt
import zmq

from daemon.errors import ConfigError, PeerLost, ProtocolError, StreamClosedError
from daemon.ipc.accounting import ThrottledCounter
from daemon.ipc.checks import check_json_object, check_text
from daemon.ipc.frame_ring import FrameRing
from daemon.ipc.handshake import await_welcome
from daemon.ipc.header import FrameHeader
from daemon.ipc.messages import (
    ControlMessage,
    Credit,
    End,
    Final,
    Heartbeat,
    Hello,
    Lost,
    Refuse,
    Region,
    RegionReply,
    Stored,
    Welcome,
    decode_control,
    encode_control,
)
from daemon.ipc.received_frame import EndOfStream, ReceivedFrame
from daemon.ipc.shared_region import REGION_REF, MappedRegions
from daemon.ipc.socket_thread import Context, SocketThread
from daemon.ipc.stored_tracker import StoredTracker
from daemon.ipc.stream_settings import ReceiverSettings
from daemon.ipc.stream_status import ReceiverStats
from daemon.log import get_logger

_POLL_MAX_S = 0.05
_RECV_BATCH = 256


class _PeerLostMarker:
    """Queued after the last frame when the sender is lost."""


class FrameReceiver:
    """Connect to a sender's endpoint; receive its frames, give credit back, acknowledge what storage made durable."""

    def __init__(self, settings: ReceiverSettings, *, context: Context | None = None) -> None:
        self._settings = settings
        self._log = get_logger("daemon.ipc.frame_receiver", worker_id=settings.worker_id)
        self._io = SocketThread(
            zmq.DEALER,
            settings.endpoint,
            bind=False,
            name="acqd-frame-receiver",
            linger_ms=int(settings.linger_s * 1000),  # time for the last STORED/FINAL to leave
            options={zmq.RCVHWM: 0},  # credit bounds what the sender puts on the link
            context=context,
        )
        self._lock = threading.Lock()
        self._tracker = StoredTracker()
        self._junk = ThrottledCounter(self._log, "frame_stream_junk")
        self._inbox: queue.SimpleQueue[ReceivedFrame | EndOfStream | _PeerLostMarker] = queue.SimpleQueue()
        self._welcome: Welcome | None = None
        self._expected_seq = 0
        self._received = self._received_bytes = self._appended = self._rejected = 0
        self._missing = self._over_credit = 0
        self._credit_frames = self._credit_bytes = 0  # consumed, not yet given back
        self._credit_batch_frames = max(1, settings.window_frames // 4)
        self._credit_batch_bytes = max(1, settings.window_bytes // 4)
        self._ring: FrameRing | None = None
        self._ring_frames = 0
        self._regions = MappedRegions()  # the I/O thread's only
        self._region_frames = 0
        self._consumed_seq = 0  # every seq below it was appended or rejected
        self._pending_lost: list[Lost] = []
        self._stored_sent = 0
        self._summary: dict[str, Any] | None = None
        self._end_received = False
        self._final_sent = threading.Event()
        self._granted = self._grant_due = False  # the initial window: granted / not yet sent by the I/O thread
        self._peer_lost = False
        self._last_heard = self._last_sent = 0.0
        self._heartbeat_s = self._liveness_s = 0.0  # from WELCOME

    # ---- worker thread -----------------------------------------------------------------------------------------

    @property
    def welcome(self) -> Welcome | None:
        return self._welcome

    @property
    def closed(self) -> bool:
        return self._io.closed

    def connect(self, *, grant: bool = True) -> Welcome:
        """HELLO, then wait for WELCOME (up to ``connect_timeout_s``); grant the initial window (unless ``grant`` is
        False: then :meth:`grant` does, once storage is ready); start the I/O thread.

        Raises ProtocolError when the sender refuses (another protocol version, already has a worker) and PeerLost
        when it does not answer in time.
        """
        if self._welcome is not None:
            return self._welcome
        if self._io.closed:
            raise StreamClosedError("frame receiver is closed.")
        ring = self._open_ring()
        hello = Hello(self._settings.worker_id, os.getpid(), None if ring is None else ring.offer.to_json())
        self._io.socket.send(encode_control(hello))
        welcome = await_welcome(self._io.socket, self._junk, self._settings.endpoint, self._settings.connect_timeout_s)
        self._welcome = welcome
        self._heartbeat_s = welcome.heartbeat_interval_s
        self._liveness_s = welcome.liveness_timeout_s
        self._last_heard = self._last_sent = time.monotonic()
        poll_s = min(self._heartbeat_s / 2, _POLL_MAX_S)
        self._io.start(self._step, self._drain_socket, self._on_io_error, poll_s)
        self._log.info("frame_stream_connected", endpoint=self._settings.endpoint, run_id=welcome.run_id)
        if grant:
            self.grant()
        return welcome

    def grant(self) -> None:
        """Grant the initial credit window (after ``connect(grant=False)``): the sender starts sending. Idempotent."""
        if self._welcome is None:
            raise StreamClosedError("frame receiver is not connected: call connect() first.")
        with self._lock:
            if self._granted:
                return
            self._granted = self._grant_due = True
        self._io.wake()

    def _open_ring(self) -> FrameRing | None:
        """The frame ring to offer (None: disabled, or shared memory is not available here)."""
        size = self._settings.ring_bytes
        if size == 0:
            return None
        try:
            self._ring = FrameRing(size)
        except OSError as exc:
            self._log.warning("frame_stream_ring_unavailable", nbytes=size, error=str(exc))
            return None
        # Credit comes back often enough that the ring frees space long before it is full.
        self._credit_batch_bytes = max(1, min(self._settings.window_bytes, size) // 4)
        return self._ring

    def recv(self, timeout_s: float) -> ReceivedFrame | EndOfStream | None:
        """The next frame or the end of the stream; None if nothing came within ``timeout_s``."""
        if self._welcome is None:
            raise StreamClosedError("frame receiver is not connected: call connect() first.")
        try:
            item = self._inbox.get(timeout=timeout_s)
        except queue.Empty:
            return None
        if isinstance(item, _PeerLostMarker):
            self._inbox.put(item)
            if self._io.error is not None:
                raise PeerLost(f"frame receiver failed: {self._io.error!r}.") from self._io.error
            raise PeerLost(
                f"the sender at {self._settings.endpoint} sent nothing for {self._liveness_s} s (liveness_timeout_s)."
            )
        return item

    def appended(self, item: ReceivedFrame) -> None:
        """``item`` was handed to storage (as the next frame of ``item.key``): its credit goes back to the sender."""
        with self._lock:
            self._tracker.appended(item.key, item.seq)
            self._appended += 1
            self._consumed_seq = max(self._consumed_seq, item.seq + 1)
            self._credit_frames += 1
            self._credit_bytes += item.nbytes
            wake = self._credit_frames >= self._credit_batch_frames or self._credit_bytes >= self._credit_batch_bytes
        if wake:
            self._io.wake()

    def rejected(self, item: ReceivedFrame, reason: str) -> None:
        """Storage could not take ``item``: report it LOST (its credit goes back to the sender with it)."""
        check_text("reason", reason)
        with self._lock:
            self._rejected += 1
            self._consumed_seq = max(self._consumed_seq, item.seq + 1)
            self._report_lost(item.seq, 1, reason)
        self._io.wake()

    def stored(self, key: str, frames_stored: int) -> None:
        """Storage reports that the first ``frames_stored`` frames appended to ``key`` are durable."""
        with self._lock:
            moved = self._tracker.stored(key, frames_stored)
            due = self._tracker.next_seq - self._stored_sent >= self._credit_batch_frames
        if moved and due:  # else the I/O thread sends it on its next turn (within a poll interval)
            self._io.wake()

    def finish(self, summary: Mapping[str, Any], timeout_s: float = 5.0) -> None:
        """Send the last STORED and FINAL with the worker's ``summary`` (a JSON object)."""
        summary = dict(summary)
        check_json_object("summary", summary)
        try:
            json.dumps(summary, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"summary must be JSON-serialisable: {exc}. Got {summary!r} instead.") from exc
        if self._welcome is None or self._io.closed:
            raise StreamClosedError("frame receiver is not connected or is closed.")
        with self._lock:
            self._summary = summary
        self._io.wake()
        self._final_sent.wait(timeout_s)
        if self._io.error is not None:
            raise PeerLost(f"frame receiver failed: {self._io.error!r}.") from self._io.error
        if not self._final_sent.is_set():
            raise PeerLost(f"FINAL could not be sent within {timeout_s} s.")

    def stats(self) -> ReceiverStats:
        with self._lock:
            return ReceiverStats(
                frames_received=self._received,
                bytes_received=self._received_bytes,
                frames_appended=self._appended,
                frames_rejected=self._rejected,
                frames_held=self._received - self._appended - self._rejected,
                frames_missing=self._missing,
                stored_next_seq=self._tracker.next_seq,
                over_credit=self._over_credit,
                end_received=self._end_received,
                final_sent=self._final_sent.is_set(),
                peer_lost=self._peer_lost,
                junk=self._junk.snapshot(),
            )

    def close(self, timeout_s: float = 5.0) -> None:
        """Stop the I/O thread and close the socket (messages already queued get ``linger_s`` to leave). Idempotent."""
        if not self._io.close(timeout_s):
            self._log.error("frame_receiver_thread_stuck", timeout_s=timeout_s)
        if self._ring is not None:
            self._ring.unlink()
        self._regions.close()

    # ---- shared state (under the lock) -------------------------------------------------------------------------

    def _report_lost(self, first_seq: int, count: int, reason: str) -> None:
        self._tracker.resolve(first_seq, count)
        self._pending_lost.append(Lost(first_seq, count, reason))

    # ---- I/O thread --------------------------------------------------------------------------------------------

    def _step(self, now: float) -> None:
        self._flush()
        self._tick(now)

    def _on_io_error(self, exc: Exception) -> None:
        self._log.error("frame_receiver_failed", error=repr(exc))
        self._peer_is_lost()

    def _tick(self, now: float) -> None:
        if not self._peer_lost and now - self._last_heard > self._liveness_s:
            self._log.warning("frame_stream_sender_lost", silent_s=round(now - self._last_heard, 3))
            self._peer_is_lost()
        if now - self._last_sent >= self._heartbeat_s:
            self._send(Heartbeat())

    def _peer_is_lost(self) -> None:
        if not self._peer_lost:
            self._peer_lost = True
            self._inbox.put(_PeerLostMarker())

    def _flush(self) -> None:
        with self._lock:
            initial = Credit(self._settings.window_frames, self._settings.window_bytes) if self._grant_due else None
            self._grant_due = False
            lost, self._pending_lost = self._pending_lost, []
            next_seq = self._tracker.next_seq
            final = self._summary if not self._final_sent.is_set() else None
            credit = None
            batch_full = self._credit_frames >= self._credit_batch_frames or (
                self._credit_bytes >= self._credit_batch_bytes
            )
            shared = self._ring_frames + self._region_frames  # frames the sender holds until we consumed them
            caught_up = shared > 0 and self._received == self._appended + self._rejected
            if self._credit_frames and (batch_full or caught_up or final is not None):
                consumed = self._consumed_seq if shared else None
                credit = Credit(self._credit_frames, self._credit_bytes, consumed)
                self._credit_frames = self._credit_bytes = 0
        if initial is not None:
            self._send(initial)
        for message in lost:
            self._send(message)
        if next_seq > self._stored_sent:
            self._send(Stored(next_seq))
            self._stored_sent = next_seq
        if credit is not None:
            self._send(credit)
        if final is not None:
            self._send(Final(next_seq, self._received, final))
            self._final_sent.set()
            self._log.info("frame_stream_final_sent", next_seq=next_seq, frames_received=self._received)

    def _send(self, message: ControlMessage) -> None:
        try:
            self._io.socket.send(encode_control(message), flags=zmq.NOBLOCK)
        except zmq.Again:
            self._junk.count("send_would_block", kind=message.KIND.name)
            return
        self._last_sent = time.monotonic()

    def _drain_socket(self) -> None:
        for _ in range(_RECV_BATCH):
            try:
                parts = self._io.socket.recv_multipart(flags=zmq.NOBLOCK, copy=False)
            except zmq.Again:
                return
            self._last_heard = time.monotonic()
            if len(parts) not in (1, 2, 3):
                self._junk.count("part_count", parts=len(parts))
                continue
            try:
                if len(parts) == 2:
                    self._on_frame(parts[0], parts[1])
                elif len(parts) == 3 and parts[2].buffer.nbytes == REGION_REF.size:
                    self._on_region_frame(parts[0], parts[1], parts[2])
                elif len(parts) == 3:
                    self._on_ring_frame(parts[0], parts[1], parts[2])
                else:
                    self._on_control(decode_control(parts[0].buffer))
            except ProtocolError as exc:
                self._junk.count("malformed", error=str(exc))

    def _on_control(self, message: ControlMessage) -> None:
        if isinstance(message, End):
            self._on_end(message)
        elif isinstance(message, Region):
            self._on_region(message)
        elif isinstance(message, Refuse):
            self._log.warning("frame_stream_refused_by_sender", reason=message.reason)
            self._peer_is_lost()
        elif not isinstance(message, Heartbeat):
            self._junk.count("unexpected_kind", kind=message.KIND.name)

    def _on_end(self, end: End) -> None:
        if end.next_seq - self._expected_seq > self._settings.window_frames:
            raise ProtocolError(f"END next_seq {end.next_seq} is beyond any window; expected {self._expected_seq}.")
        with self._lock:
            if end.next_seq > self._expected_seq:
                self._skip_to(end.next_seq)
            self._end_received = True
        self._inbox.put(EndOfStream(end.frames, end.next_seq))

    def _skip_to(self, seq: int) -> None:
        """Sequence numbers from the expected one up to ``seq`` never arrived: report them LOST (under the lock)."""
        gap = seq - self._expected_seq
        self._missing += gap
        self._report_lost(self._expected_seq, gap, "transit_gap")
        self._log.warning("frame_stream_transit_gap", first_seq=self._expected_seq, count=gap)
        self._expected_seq = seq

    def _on_region(self, region: Region) -> None:
        try:
            self._regions.attach(region)
        except ProtocolError as exc:
            self._log.info("frame_stream_region_refused", region_id=region.region_id, reason=str(exc))
            self._send(RegionReply(region.region_id, False, str(exc)))
            return
        self._send(RegionReply(region.region_id, True))

    def _on_region_frame(self, head: zmq.Frame, body: zmq.Frame, ref: zmq.Frame) -> None:
        """A frame the sender left in a shared region we mapped: ``ref`` is the region's id and the offset."""
        if body.buffer.nbytes:
            raise ProtocolError("a region frame must have an empty second part.")
        header = FrameHeader.decode(head.bytes)
        region_id, offset = REGION_REF.unpack(ref.bytes)
        pixels = self._regions.view(region_id, offset, header.nbytes, header.dtype, header.shape)
        self._region_frames += 1
        self._accept(header, pixels, header.nbytes)

    def _on_ring_frame(self, head: zmq.Frame, body: zmq.Frame, ref: zmq.Frame) -> None:
        """A frame whose pixels the sender put in our ring: ``body`` is empty, ``ref`` its 8-byte offset."""
        ring = self._ring
        if ring is None or body.buffer.nbytes or ref.buffer.nbytes != 8:
            raise ProtocolError("a ring frame came, but this worker offered no ring or the reference is malformed.")
        header = FrameHeader.decode(head.bytes)
        pixels = ring.view(int.from_bytes(ref.bytes, "little"), header.nbytes, header.dtype, header.shape)
        if not self._ring_frames:
            ring.unlink()  # the sender has it mapped: the name is no longer needed
        self._ring_frames += 1
        self._accept(header, pixels, header.nbytes)

    def _on_frame(self, head: zmq.Frame, body: zmq.Frame) -> None:
        header = FrameHeader.decode(head.bytes)
        pixels = np.frombuffer(body.buffer, dtype=header.dtype)
        self._accept(header, pixels, body.buffer.nbytes)

    def _accept(self, header: FrameHeader, pixels: npt.NDArray[Any], nbytes: int) -> None:
        run_id = self._welcome.run_id if self._welcome is not None else None
        if header.run_id != run_id:
            raise ProtocolError(f"frame run_id must be {run_id!r}. Got {header.run_id!r} instead.")
        seq = header.seq
        if seq < self._expected_seq or seq - self._expected_seq > self._settings.window_frames:
            raise ProtocolError(f"frame seq {seq} is out of order; expected {self._expected_seq}.")
        with self._lock:
            if seq > self._expected_seq:
                self._skip_to(seq)
            self._expected_seq = seq + 1
            if nbytes != header.nbytes:
                self._missing += 1
                self._report_lost(seq, 1, "malformed_frame")
                raise ProtocolError(f"frame {seq} pixels are {nbytes} bytes; its header says {header.nbytes}.")
            self._received += 1
            self._received_bytes += header.nbytes
            if self._received - self._appended - self._rejected > self._settings.window_frames:
                self._over_credit += 1
        pixels = pixels.reshape(header.shape)
        pixels.flags.writeable = False
        self._inbox.put(ReceivedFrame(header, pixels))
