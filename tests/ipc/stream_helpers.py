"""Test helpers for the frame stream: frames, an in-process worker loop with a stand-in store, waiting.

The stand-in store has the storage engine's shape (``append(data, key)``, ``frames_stored(key)``): it copies each
frame, and reports frames stored in steps of ``stored_every`` (as a sharded store finalizes whole shards).
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import zmq

from daemon.ipc.frame import Frame, FrameFlags
from daemon.ipc.frame_receiver import FrameReceiver
from daemon.ipc.messages import Hello, Welcome, decode_control, encode_control
from daemon.ipc.received_frame import EndOfStream, ReceivedFrame
from daemon.ipc.wire import MAGIC, PREFIX, MessageKind, decode_prefix
from tests.waiting import wait_until as wait_until  # re-exported: tests import it from here

REPO_ROOT = Path(__file__).resolve().parents[2]


def make_frame(
    frame_id: int, shape: tuple[int, ...] = (8, 16), dtype: Any = np.uint16, flags: FrameFlags = FrameFlags.NONE
) -> Frame:
    """A frame whose every pixel encodes its id, so a receiver can check it."""
    pixels = np.full(shape, frame_id % 251, dtype=dtype)
    return Frame(pixels, frame_id, host_time_ns=1_000_000 + frame_id, device_timestamp_ns=frame_id * 10, flags=flags)


def take(receiver: FrameReceiver, timeout_s: float = 5.0) -> ReceivedFrame:
    """The next frame from ``receiver`` (fails if something else, or nothing, comes)."""
    item = receiver.recv(timeout_s=timeout_s)
    assert isinstance(item, ReceivedFrame), f"expected a frame within {timeout_s} s. Got {item!r} instead."
    return item


def with_version(encoded: bytes, version: int) -> bytes:
    """An encoded message with another protocol version in its prefix."""
    return PREFIX.pack(MAGIC, version, encoded[3]) + encoded[PREFIX.size :]


class FakeSender:
    """A raw ROUTER playing the acquisition side, to feed a real receiver whatever a test needs."""

    def __init__(self, router: zmq.Socket[bytes]) -> None:
        self.router = router
        router.bind("tcp://127.0.0.1:0")
        self.endpoint = router.getsockopt_string(zmq.LAST_ENDPOINT)
        self.peer: bytes | None = None

    def answer_hello(self, reply: bytes) -> None:
        """Answer the next HELLO with ``reply``, from a thread (the receiver's ``connect()`` blocks meanwhile)."""

        def answer() -> None:
            peer, _hello = self.router.recv_multipart()
            self.peer = peer
            self.router.send_multipart([peer, reply])

        threading.Thread(target=answer, name="test-fake-sender", daemon=True).start()

    def send(self, *parts: Any) -> None:
        assert self.peer is not None, "no HELLO answered yet"
        self.router.send_multipart([self.peer, *parts])


def fake_worker(dealer: zmq.Socket[bytes], endpoint: str, worker_id: str = "raw") -> zmq.Socket[bytes]:
    """A raw DEALER playing a worker: connected to ``endpoint`` and welcomed (it grants no credit yet)."""
    dealer.connect(endpoint)
    dealer.send(encode_control(Hello(worker_id)))
    reply = decode_control(dealer.recv())
    assert isinstance(reply, Welcome), f"expected WELCOME. Got {reply!r} instead."
    return dealer


def control_messages_until(
    router: zmq.Socket[bytes], done: Callable[[list[object]], bool], timeout_s: float = 5.0
) -> list[object]:
    """Control messages a raw ROUTER receives (heartbeats left out) until ``done(messages)``; bounded in time."""
    got: list[object] = []
    deadline = time.monotonic() + timeout_s
    while not done(got):
        assert time.monotonic() < deadline, f"timed out after {timeout_s} s; got {got}"
        if router.poll(50, zmq.POLLIN):
            _peer, body = router.recv_multipart()
            if decode_prefix(body)[1] is not MessageKind.HEARTBEAT:
                got.append(decode_control(body))
    return got


def recv_frame_parts(dealer: zmq.Socket[bytes], timeout_s: float = 5.0) -> list[bytes]:
    """The next message a raw DEALER worker receives that is not a HEARTBEAT (the sender sends one whenever it has
    sent nothing for ``heartbeat_interval_s``, so one may come before a frame on a slow machine); bounded in time."""
    deadline = time.monotonic() + timeout_s
    while True:
        assert time.monotonic() < deadline, f"no message but heartbeats for {timeout_s} s"
        if dealer.poll(50, zmq.POLLIN):
            parts = dealer.recv_multipart()
            if len(parts) > 1 or decode_prefix(parts[0])[1] is not MessageKind.HEARTBEAT:
                return parts


@dataclass
class ListStore:
    """Keeps copies of appended frames; frames become 'stored' in steps of ``stored_every`` per key."""

    stored_every: int = 1
    frames: dict[str, list[np.ndarray]] = field(default_factory=dict)

    def append(self, data: np.ndarray, key: str) -> None:
        self.frames.setdefault(key, []).append(np.array(data, copy=True))

    def frames_stored(self, key: str) -> int:
        n = len(self.frames.get(key, []))
        return n - n % self.stored_every

    def close(self) -> None:
        self.stored_every = 1


class FrameStore(Protocol):
    """What the worker loop needs of storage: the storage engine's ``ZarrStream`` has this shape."""

    def append(self, data: np.ndarray, key: str) -> None: ...

    def frames_stored(self, key: str) -> int: ...

    def close(self) -> None: ...


class WorkerLoop:
    """A receiver's worker loop on a thread: recv -> store -> appended/stored (also when idle) -> FINAL on END."""

    def __init__(self, receiver: FrameReceiver, store: FrameStore | None = None, delay_s: float = 0.0) -> None:
        self.receiver = receiver
        self.store: FrameStore = store if store is not None else ListStore()
        self.delay_s = delay_s
        self.received: list[ReceivedFrame] = []
        self.end: EndOfStream | None = None
        self.error: BaseException | None = None
        self._keys: set[str] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="test-worker-loop", daemon=True)

    def start(self) -> WorkerLoop:
        self._thread.start()
        return self

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                item = self.receiver.recv(timeout_s=0.05)
                if isinstance(item, ReceivedFrame):
                    self._store(item)
                elif isinstance(item, EndOfStream):
                    self.end = item
                    self.store.close()
                    self._report_stored()
                    self.receiver.finish({"frames": len(self.received)})
                    return
                else:
                    self._report_stored()  # storage finishes chunks in the background
        except BaseException as exc:  # surfaced by stop() in the test thread
            self.error = exc

    def _store(self, item: ReceivedFrame) -> None:
        if self.delay_s:
            time.sleep(self.delay_s)
        # Keep a copy, as a store does: a ring frame's pixels are the sender's to reuse once appended.
        self.received.append(dataclasses.replace(item, pixels=item.pixels.copy()))
        self.store.append(item.pixels, item.key)
        self.receiver.appended(item)
        self._keys.add(item.key)
        self.receiver.stored(item.key, self.store.frames_stored(item.key))

    def _report_stored(self) -> None:
        for key in self._keys:
            self.receiver.stored(key, self.store.frames_stored(key))

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stop.set()
        self._thread.join(timeout_s)
        assert not self._thread.is_alive(), "worker loop did not stop"
        if self.error is not None:
            raise self.error
