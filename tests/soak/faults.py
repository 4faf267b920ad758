"""The soak's faults: what each does while the two runs go on, and which run outcomes it allows.

A fault is a :class:`Fault`: optional ``nodes`` for the local run's fake camera (producer fault features), a
``fire`` action taking the harness, and the outcomes each run may end with. The schedule is seeded
(:func:`schedule`): a shuffled pass over every fault first (so a short soak still sees each one), then random
picks.

The ``daemon_kill`` fault is special: the harness restarts the daemon and the runs end ``interrupted`` (found in
the run journal and recovered by the new daemon).
"""

from __future__ import annotations

import json
import os
import random
import resource
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

import zmq

from daemon.ipc.events import Events
from tests.control.test_fuzz_requests import random_message
from tests.fixtures.s3 import SeaweedServer
from tests.fixtures.tcp_proxy import TcpProxy

FINISHED = frozenset({"finished"})
FAILED = frozenset({"failed"})


class Harness(Protocol):
    """What a fault may use of the harness (see :mod:`tests.soak.harness`)."""

    rng: random.Random
    server: SeaweedServer
    proxy: TcpProxy

    def worker_pid(self, role: str) -> int | None: ...

    def crash_and_restart(self) -> None: ...

    @property
    def events_endpoint(self) -> str: ...

    @property
    def control_endpoint(self) -> str: ...


@dataclass(frozen=True)
class Fault:
    name: str
    fire: Callable[[Harness], str]
    nodes: Callable[[random.Random], dict[str, int]] = lambda rng: {}
    local: frozenset[str] = FINISHED
    s3: frozenset[str] = FINISHED
    crash: bool = False
    notes: dict[str, Any] = field(default_factory=dict)


def _nothing(h: Harness) -> str:
    time.sleep(1.5)
    return ""


def kill_worker(h: Harness) -> str:
    pid = h.worker_pid("local")
    assert pid is not None, "no worker_spawned line for the local run"
    os.kill(pid, signal.SIGKILL)
    return f"worker {pid} SIGKILL"


def disk_full(h: Harness) -> str:
    """The local run's storage worker may write no byte more to any file (EFBIG, as a full disk gives ENOSPC)."""
    pid = h.worker_pid("local")
    assert pid is not None, "no worker_spawned line for the local run"
    resource.prlimit(pid, resource.RLIMIT_FSIZE, (1, 1))
    time.sleep(2.0)
    return f"RLIMIT_FSIZE=1 on worker {pid}"


def s3_reset(h: Harness) -> str:
    h.proxy.reset_after(h.rng.randrange(1, 200_000))
    time.sleep(2.0)
    h.proxy.pass_through()
    return f"proxy resets so far {h.proxy.resets}"


def s3_black_hole(h: Harness) -> str:
    seconds = round(h.rng.uniform(2.0, 5.0), 1)
    h.proxy.black_hole()
    time.sleep(seconds)
    h.proxy.pass_through()
    return f"black hole {seconds} s"


def s3_sigstop(h: Harness) -> str:
    proc = h.server.proc
    assert proc is not None
    seconds = round(h.rng.uniform(1.5, 4.0), 1)
    os.killpg(proc.pid, signal.SIGSTOP)
    try:
        time.sleep(seconds)
    finally:
        os.killpg(proc.pid, signal.SIGCONT)
    return f"weed SIGSTOP {seconds} s"


def control_flood(h: Harness) -> str:
    """Malformed and random control requests while a subscriber reads nothing (its queue fills), then drains."""
    messages = 1500
    context = zmq.Context.instance()
    with Events(h.events_endpoint, timeout_s=1.0) as slow, context.socket(zmq.DEALER) as sock:
        sock.setsockopt(zmq.LINGER, 0)
        sock.connect(h.control_endpoint)
        for _ in range(messages):
            sock.send_multipart(random_message(h.rng))
        replies = 0
        deadline = time.monotonic() + 20.0
        while time.monotonic() < deadline and sock.poll(2000, zmq.POLLIN):
            sock.recv_multipart()
            replies += 1
        drained = sum(1 for _ in _drain(slow))
    return f"{messages} requests, {replies} replies, slow subscriber drained {drained} events"


def _drain(events: Events) -> Iterator[object]:
    while (event := events.recv(timeout_s=0.2)) is not None:
        yield event


def crash(h: Harness) -> str:
    h.crash_and_restart()
    return "daemon SIGKILL + restart"


FAULTS: tuple[Fault, ...] = (
    Fault("worker_kill", kill_worker, local=FAILED),
    Fault("disk_full", disk_full, local=FAILED),
    Fault("daemon_kill", crash, crash=True),
    Fault("s3_reset", s3_reset),
    Fault("s3_black_hole", s3_black_hole),
    Fault("s3_sigstop", s3_sigstop),
    # The profile's nodes re-arm FaultDisconnectAfter on every reconnect, so the device keeps dropping out; a run may
    # end `failed` once its bounded reconnect attempts run out. Either way the books must balance (checked).
    Fault(
        "camera_disconnect",
        _nothing,
        nodes=lambda rng: {"FaultDisconnectAfter": rng.randrange(40, 120)},
        local=FINISHED | FAILED,
    ),
    Fault("incomplete", _nothing, nodes=lambda rng: {"FaultIncompleteEvery": rng.randrange(3, 12)}),
    Fault(
        "stall",
        _nothing,
        nodes=lambda rng: {"FaultStallAfter": rng.randrange(20, 80), "FaultStallMs": rng.randrange(300, 1500)},
    ),
    Fault("control_flood", control_flood),
)
BY_NAME = {fault.name: fault for fault in FAULTS}


def schedule(seed: int, only: tuple[str, ...] = ()) -> Iterator[Fault]:
    """The faults in seeded order: a shuffled pass over every fault, then random picks (``only``: these names)."""
    rng = random.Random(seed)
    pool = [BY_NAME[name] for name in only] if only else list(FAULTS)
    first = pool[:]
    rng.shuffle(first)
    yield from first
    while True:
        yield rng.choice(pool)


def describe(fault: Fault) -> str:
    return json.dumps({"fault": fault.name, "local": sorted(fault.local), "s3": sorted(fault.s3)})
