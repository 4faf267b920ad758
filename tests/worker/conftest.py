"""Fixtures of the storage worker tests: senders and worker child processes, all stopped at teardown."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from daemon.ipc.endpoint import PrivateIpcFolder
from daemon.ipc.frame_sender import FrameSender
from daemon.ipc.stream_settings import SenderSettings
from daemon.storage import StreamSettings
from daemon.storage.settings_json import worker_config

from .support import WorkerProcess

RUN_ID = "run-worker-test"


@pytest.fixture
def make_sender() -> Iterator[Callable[..., FrameSender]]:
    """``make_sender(settings, endpoint=None, **sender_settings)``: a sender on a private ipc endpoint (default)
    whose WELCOME config asks the worker to write ``settings``."""
    made: list[FrameSender] = []
    folders: list[PrivateIpcFolder] = []

    def make(
        settings: StreamSettings, endpoint: str | None = None, frame_table: bool = True, **options: Any
    ) -> FrameSender:
        if endpoint is None:
            folders.append(PrivateIpcFolder())
            endpoint = folders[-1].endpoint
        options.setdefault("heartbeat_interval_s", 0.05)
        options.setdefault("liveness_timeout_s", 2.0)
        config = worker_config(settings, frame_table=frame_table)
        sender = FrameSender(SenderSettings(endpoint=endpoint, run_id=RUN_ID, config=config, **options))
        made.append(sender)
        return sender

    yield make
    for sender in made:
        sender.close()
    for folder in folders:
        folder.close()


@pytest.fixture
def start_worker(tmp_path: Path) -> Iterator[Callable[..., WorkerProcess]]:
    """``start_worker(endpoint, env=None, **popen)``: the real worker child, killed at teardown if still running."""
    started: list[WorkerProcess] = []

    def start(endpoint: str, env: dict[str, str] | None = None, **popen: Any) -> WorkerProcess:
        worker = WorkerProcess.start(endpoint, tmp_path / f"worker-{len(started)}.log", env, **popen)
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()
