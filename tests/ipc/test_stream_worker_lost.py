"""Worker lost: the sender knows exactly which frames a dead, silent or departing worker never stored."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from daemon.ipc.accounting import DropReason
from daemon.ipc.endpoint import PrivateIpcFolder
from daemon.ipc.frame_receiver import FrameReceiver
from daemon.ipc.frame_sender import FrameSender
from daemon.ipc.stream_status import SenderState, SenderStats

from .stream_helpers import REPO_ROOT, make_frame, take, wait_until

SHAPE = (64, 64)


def check_lost_books(stats: SenderStats, offered: list[int], refused: dict[int, DropReason]) -> None:
    """Stored frames are a prefix of what was sent; every other accepted frame is listed lost exactly once."""
    balance = stats.balance
    assert balance.balanced
    assert balance.in_flight == 0
    assert balance.delivered == len(offered)
    assert balance.dropped.worker_lost == len(stats.lost) + sum(r is DropReason.WORKER_LOST for r in refused.values())
    accepted = [i for i in offered if i not in refused]
    sent_lost = [f for f in stats.lost if f.seq is not None]
    queued_lost = [f.frame_id for f in stats.lost if f.seq is None]
    # seqs follow acceptance order; unacked = exactly the sent seqs at and above what was acknowledged stored
    assert [f.seq for f in sent_lost] == list(range(stats.frames_stored, stats.frames_sent))
    assert [f.frame_id for f in sent_lost] == accepted[stats.frames_stored : stats.frames_sent]
    assert queued_lost == accepted[stats.frames_sent :]
    assert balance.stored == stats.frames_stored


@pytest.fixture
def child_worker(tmp_path: Path) -> Iterator[Callable[..., subprocess.Popen[bytes]]]:
    children: list[subprocess.Popen[bytes]] = []

    def start(endpoint: str, *args: str) -> subprocess.Popen[bytes]:
        env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
        log = (tmp_path / f"child-{len(children)}.log").open("wb")
        child = subprocess.Popen(
            [sys.executable, "-m", "tests.ipc.worker_child", endpoint, *args],
            cwd=REPO_ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        children.append(child)
        return child

    yield start
    for child in children:
        if child.poll() is None:
            child.kill()
        child.wait(10)


def test_sigkilled_worker_process_loses_exactly_its_unacknowledged_frames(
    tmp_path: Path,
    ipc_folder: PrivateIpcFolder,
    make_sender: Callable[..., FrameSender],
    child_worker: Callable[..., subprocess.Popen[bytes]],
) -> None:
    liveness_s = 1.0
    sender = make_sender(ipc_folder.endpoint, liveness_timeout_s=liveness_s, heartbeat_interval_s=0.1)
    out = tmp_path / "store"
    out.mkdir()
    child = child_worker(sender.endpoint, "--out", str(out), "--stored-every", "4", "--window-frames", "8")
    assert sender.wait_for_worker(20.0) is not None

    offered: list[int] = []
    refused: dict[int, DropReason] = {}
    killed_at: float | None = None
    deadline = time.monotonic() + 30.0
    for frame_id in range(100_000):
        assert time.monotonic() < deadline, f"no good moment to kill the worker: {sender.stats()}"
        reason = sender.offer(make_frame(frame_id, SHAPE), "k")
        offered.append(frame_id)
        if reason is not None:
            refused[frame_id] = reason
        stats = sender.stats()
        if killed_at is None and stats.frames_stored >= 20 and stats.unacked_frames >= 2:
            child.send_signal(signal.SIGKILL)
            killed_at = time.monotonic()
        if killed_at is not None and stats.state is SenderState.WORKER_LOST:
            break
        time.sleep(0.001)
    assert killed_at is not None
    detected_s = time.monotonic() - killed_at
    assert detected_s < liveness_s + 0.5  # the heartbeat to a vanished ipc peer fails even sooner
    assert child.wait(10) == -signal.SIGKILL

    for frame_id in range(len(offered), len(offered) + 3):  # later frames are refused and counted, not queued
        assert sender.offer(make_frame(frame_id, SHAPE), "k") is DropReason.WORKER_LOST
        offered.append(frame_id)
        refused[frame_id] = DropReason.WORKER_LOST

    stats = sender.stats()
    assert stats.lost_cause in ("worker_unreachable", "liveness_timeout")
    assert stats.frames_stored >= 20
    assert stats.unacked_frames == 0
    assert len([f for f in stats.lost if f.seq is not None]) >= 2
    check_lost_books(stats, offered, refused)

    # acknowledged means durable: every frame the sender counts stored is in the dead worker's fsynced files
    ids = np.fromfile(out / "ids.bin", dtype="<u8")
    accepted = [i for i in offered if i not in refused]
    assert len(ids) >= stats.frames_stored
    assert ids[: stats.frames_stored].tolist() == accepted[: stats.frames_stored]
    pixels = np.fromfile(out / "pixels.bin", dtype=np.uint16)[: stats.frames_stored * SHAPE[0] * SHAPE[1]]
    expected = np.stack([make_frame(i, SHAPE).pixels for i in accepted[: stats.frames_stored]])
    np.testing.assert_array_equal(pixels.reshape(expected.shape), expected)


def test_child_process_worker_stores_everything_and_finishes(
    tmp_path: Path,
    ipc_folder: PrivateIpcFolder,
    make_sender: Callable[..., FrameSender],
    child_worker: Callable[..., subprocess.Popen[bytes]],
) -> None:
    sender = make_sender(ipc_folder.endpoint, liveness_timeout_s=5.0, heartbeat_interval_s=0.1)
    out = tmp_path / "store"
    out.mkdir()
    child = child_worker(sender.endpoint, "--out", str(out), "--stored-every", "7")
    worker = sender.wait_for_worker(20.0)
    assert worker is not None
    assert worker.pid == child.pid
    for frame_id in range(200):
        reason = sender.offer(make_frame(frame_id, SHAPE), "k")
        assert reason is None
    result = sender.finish(timeout_s=20.0)
    assert result.state is SenderState.FINISHED
    assert result.summary == {"frames": 200, "pid": child.pid}
    assert (result.stats.balance.stored, result.stats.balance.in_flight) == (200, 0)
    assert child.wait(10) == 0
    assert np.fromfile(out / "ids.bin", dtype="<u8").tolist() == list(range(200))


def test_worker_lost_declared_by_the_pipeline_loses_unacked_and_queued(
    make_sender: Callable[..., FrameSender], make_receiver: Callable[..., FrameReceiver]
) -> None:
    sender = make_sender()
    receiver = make_receiver(sender.endpoint, window_frames=4)
    receiver.connect()
    for i in range(10):
        sender.offer(make_frame(i), "k")
    items = []
    for _ in range(4):
        item = take(receiver)
        items.append(item)
    receiver.appended(items[0])
    receiver.appended(items[1])
    receiver.stored("k", 2)
    wait_until(lambda: sender.stats().frames_stored == 2, what="two stored")
    wait_until(lambda: sender.stats().frames_sent == 6, what="the two credits returned used")
    sender.worker_lost("worker_exited")
    stats = sender.stats()
    assert (stats.state, stats.lost_cause) == (SenderState.WORKER_LOST, "worker_exited")
    check_lost_books(stats, list(range(10)), {})
    assert [f.seq for f in stats.lost] == [2, 3, 4, 5, None, None, None, None]
    sender.worker_lost("again")  # losing twice changes nothing
    assert sender.stats().lost_cause == "worker_exited"


def test_finish_timing_out_declares_the_worker_lost(
    make_sender: Callable[..., FrameSender], make_receiver: Callable[..., FrameReceiver]
) -> None:
    sender = make_sender()
    receiver = make_receiver(sender.endpoint, window_frames=3)
    receiver.connect()  # connected and heartbeating, but its worker never stores anything
    for i in range(5):
        sender.offer(make_frame(i), "k")
    wait_until(lambda: sender.stats().frames_sent == 3, what="three sent")
    started = time.monotonic()
    result = sender.finish(timeout_s=0.3)
    assert 0.25 < time.monotonic() - started < 3.0
    assert (result.state, result.summary, result.stats.lost_cause) == (SenderState.WORKER_LOST, None, "finish_timeout")
    check_lost_books(result.stats, list(range(5)), {})


def test_a_worker_leaving_before_the_end_is_lost(
    make_sender: Callable[..., FrameSender], make_receiver: Callable[..., FrameReceiver]
) -> None:
    sender = make_sender()
    receiver = make_receiver(sender.endpoint)
    receiver.connect()
    for i in range(3):
        sender.offer(make_frame(i), "k")
    item = take(receiver)
    receiver.appended(item)
    receiver.stored("k", 1)
    receiver.finish({"why": "shutting down"})
    wait_until(lambda: sender.stats().state is SenderState.WORKER_LOST, what="worker lost")
    stats = sender.stats()
    assert (stats.lost_cause, stats.frames_stored) == ("worker_finished_early", 1)
    check_lost_books(stats, [0, 1, 2], {})


def test_finish_without_any_worker_loses_the_queue(make_sender: Callable[..., FrameSender]) -> None:
    sender = make_sender()
    for i in range(4):
        sender.offer(make_frame(i), "k")
    result = sender.finish(timeout_s=0.2)
    assert (result.state, result.stats.lost_cause) == (SenderState.WORKER_LOST, "finish_timeout")
    check_lost_books(result.stats, list(range(4)), {})


def test_a_hung_worker_process_is_lost_by_liveness_timeout(
    ipc_folder: PrivateIpcFolder,
    make_sender: Callable[..., FrameSender],
    child_worker: Callable[..., subprocess.Popen[bytes]],
) -> None:
    sender = make_sender(ipc_folder.endpoint, liveness_timeout_s=0.5, heartbeat_interval_s=0.05)
    child = child_worker(sender.endpoint, "--window-frames", "4")
    assert sender.wait_for_worker(20.0) is not None
    for i in range(3):
        sender.offer(make_frame(i), "k")
    wait_until(lambda: sender.stats().frames_stored == 3, what="three stored")
    child.send_signal(signal.SIGSTOP)  # alive and connected, but silent
    stopped_at = time.monotonic()
    for i in range(3, 8):
        sender.offer(make_frame(i), "k")
    wait_until(lambda: sender.stats().state is SenderState.WORKER_LOST, timeout_s=5.0, what="worker lost")
    assert 0.4 < time.monotonic() - stopped_at < 2.0
    stats = sender.stats()
    assert stats.lost_cause == "liveness_timeout"
    check_lost_books(stats, list(range(8)), {})
    child.send_signal(signal.SIGCONT)
