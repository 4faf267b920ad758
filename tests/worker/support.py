"""Helpers of the storage worker tests: store settings, reference frames, the worker child process, reading back.

The acquisition side is a real :class:`FrameSender` in the test process; the worker is the real
``python -m daemon.storage.worker`` child (its JSON log lines go to a file the test can read). zarr-python is the
oracle for what the worker wrote; importing it here does not touch the engine, which runs in the child.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import zarr

from daemon.cameras.pattern import radial_sine
from daemon.ipc.accounting import DropReason
from daemon.ipc.frame import Frame, FrameFlags
from daemon.ipc.frame_sender import FrameSender
from daemon.storage import ArraySettings, CompressionSettings, Dimension, StreamSettings
from tests.waiting import wait_until as wait_until  # re-exported: tests import it from here

REPO = Path(__file__).resolve().parents[2]
HEIGHT, WIDTH = 48, 64
FRAMES_PER_SHARD = 8  # v3: t chunk 4 x 2 chunks per shard
FRAMES_PER_CHUNK = 4  # v2: t chunk 4
COLUMNS = ("frame_id", "device_timestamp_ns", "host_time_ns", "flags")


def dimensions(version: int, height: int = HEIGHT, width: int = WIDTH) -> list[Dimension]:
    """v3: sharded (8 frames per shard, one shard spans the frame); v2: chunks of 4 frames, 2 chunks per frame."""
    if version == 3:
        return [
            Dimension("t", "time", 0, 4, shard_size_chunks=2),
            Dimension("y", "space", height, height // 3, shard_size_chunks=3),
            Dimension("x", "space", width, width // 2, shard_size_chunks=2),
        ]
    return [
        Dimension("t", "time", 0, 4),
        Dimension("y", "space", height, height // 2),
        Dimension("x", "space", width, width),
    ]


def stream_settings(
    path: Path,
    version: int,
    keys: Sequence[str] = ("cam0",),
    compression: CompressionSettings | None = None,
    **stream: Any,
) -> StreamSettings:
    arrays = [
        ArraySettings(output_key=key, data_type="uint16", dimensions=dimensions(version), compression=compression)
        for key in keys
    ]
    return StreamSettings(store_path=str(path), version=version, arrays=arrays, **stream)


def make_frame(frame_id: int, index: int, height: int = HEIGHT, width: int = WIDTH) -> Frame:
    """The reference radial sine for ``frame_id``; timing and flags vary with ``index`` so every column is tested."""
    device = None if index % 5 == 3 else 7_000_000 + 1_000 * frame_id
    flags = FrameFlags.INCOMPLETE if index % 7 == 2 else FrameFlags.AFTER_GAP if index % 7 == 5 else FrameFlags.NONE
    pixels = radial_sine(frame_id, height, width, np.uint16)
    return Frame(pixels, frame_id, host_time_ns=1_700_000_000_000_000_000 + index * 3_001, device_timestamp_ns=device,
                 flags=flags)  # fmt: skip


def table_row(frame: Frame) -> tuple[int, int, int, int]:
    """The frame-table row ``frame`` should get."""
    device = -1 if frame.device_timestamp_ns is None else frame.device_timestamp_ns
    return (frame.frame_id, device, frame.host_time_ns, int(frame.flags))


@dataclass
class Offered:
    """What a test offered to a sender: accepted frames per key (in order) and drops by reason."""

    accepted: dict[str, list[Frame]] = field(default_factory=dict)
    dropped: dict[DropReason, int] = field(default_factory=dict)

    def offer(self, sender: FrameSender, frame: Frame, key: str) -> DropReason | None:
        reason = sender.offer(frame, key)
        if reason is None:
            self.accepted.setdefault(key, []).append(frame)
        else:
            self.dropped[reason] = self.dropped.get(reason, 0) + 1
        return reason

    @property
    def total(self) -> int:
        return sum(len(v) for v in self.accepted.values()) + sum(self.dropped.values())


class WorkerProcess:
    """The real worker child; its log lines go to ``log_path``."""

    def __init__(self, command: list[str], log_path: Path, env: dict[str, str] | None = None, **popen: Any) -> None:
        self.log_path = log_path
        self._log = log_path.open("w")
        self.proc = subprocess.Popen(
            command,
            cwd=REPO,
            env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1", **(env or {})},
            stdout=self._log,
            stderr=subprocess.STDOUT,
            **popen,
        )

    @classmethod
    def start(cls, endpoint: str, log_path: Path, env: dict[str, str] | None = None, **popen: Any) -> WorkerProcess:
        command = [sys.executable, "-m", "daemon.storage.worker", "--connect", endpoint, "--log-format", "json"]
        return cls(command, log_path, env, **popen)

    def wait(self, timeout_s: float = 30.0) -> int:
        code = self.proc.wait(timeout_s)
        self._log.close()
        return code

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.wait()

    def stop(self) -> None:
        """Teardown: kill the child if it still runs."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.wait()

    def events(self) -> list[dict[str, Any]]:
        """The worker's JSON log events (plain text lines, e.g. a traceback, are kept as ``{"text": line}``)."""
        return [_event(line) for line in self.log_path.read_text().splitlines()]

    def log_text(self) -> str:
        return self.log_path.read_text()


def _event(line: str) -> dict[str, Any]:
    try:
        event: dict[str, Any] = json.loads(line)
    except json.JSONDecodeError:
        return {"text": line}
    return event


def read_array(store: Path, path: str) -> npt.NDArray[Any]:
    data: npt.NDArray[Any] = np.asarray(zarr.open_array(str(store), path=path, mode="r")[...])
    return data


def read_table(store: Path, key: str) -> dict[str, npt.NDArray[Any]]:
    group = zarr.open_group(str(store), path=f"{key}/frames" if key else "frames", mode="r")
    return {name: np.asarray(group[name][...]) for name in COLUMNS}


def table_rows(table: dict[str, npt.NDArray[Any]]) -> list[tuple[int, int, int, int]]:
    return [tuple(int(v) for v in row) for row in zip(*(table[c] for c in COLUMNS), strict=True)]  # type: ignore[misc]


def check_frames(store: Path, key: str, frames: Sequence[Frame], claimed: int | None = None) -> int:
    """How many frames the image ``key`` claims (exactly ``claimed`` if given; never more than ``len(frames)``),
    after checking every claimed frame equals the frame offered at that position."""
    data = read_array(store, f"{key}/0" if key else "0")
    if claimed is not None:
        assert data.shape[0] == claimed
    assert data.shape[0] <= len(frames)
    for k in range(data.shape[0]):
        np.testing.assert_array_equal(data[k], frames[k].pixels, err_msg=f"{key} frame {k}")
    return int(data.shape[0])


def disk_objects(store: Path) -> tuple[int, int]:
    """(bytes of every file in the store, files that are not metadata)."""
    files = [p for p in store.rglob("*") if p.is_file()]
    meta = {"zarr.json", ".zarray", ".zgroup", ".zattrs"}
    return sum(p.stat().st_size for p in files), sum(1 for p in files if p.name not in meta)
