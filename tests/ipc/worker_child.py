"""A tiny storage worker for tests and measurements, run as a child process: ``python -m tests.ipc.worker_child``.

It connects a :class:`FrameReceiver` to ENDPOINT and stores frames in a stand-in store with the engine's
contract: with ``--out DIR`` it appends pixels to ``DIR/pixels.bin`` and frame ids (u64) to ``DIR/ids.bin`` and
fsyncs both every ``--stored-every`` frames, and only then reports those frames stored; without ``--out`` frames
are counted and stored at once (to measure the link alone). On END it syncs, acknowledges, sends FINAL and exits 0.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from daemon.ipc.frame_receiver import FrameReceiver
from daemon.ipc.received_frame import EndOfStream, ReceivedFrame
from daemon.ipc.stream_settings import ReceiverSettings


class FsyncStore:
    """Frames appended to two files; ``sync`` makes everything appended durable."""

    def __init__(self, out: Path | None) -> None:
        self._files = None if out is None else (open(out / "pixels.bin", "wb"), open(out / "ids.bin", "wb"))  # noqa: SIM115
        self.appended: dict[str, int] = {}
        self.stored: dict[str, int] = {}

    def append(self, item: ReceivedFrame) -> None:
        if self._files is not None:
            self._files[0].write(item.pixels.tobytes())
            self._files[1].write(item.header.frame_id.to_bytes(8, "little"))
        self.appended[item.key] = self.appended.get(item.key, 0) + 1

    def sync(self) -> None:
        if self._files is not None:
            for f in self._files:
                f.flush()
                os.fsync(f.fileno())
        self.stored = dict(self.appended)

    def close(self) -> None:
        self.sync()
        if self._files is not None:
            for f in self._files:
                f.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("endpoint")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--stored-every", type=int, default=1)
    parser.add_argument("--window-frames", type=int, default=16)
    parser.add_argument("--window-bytes", type=int, default=256 << 20)
    args = parser.parse_args(argv)
    receiver = FrameReceiver(
        ReceiverSettings(
            args.endpoint,
            worker_id=f"child-{os.getpid()}",
            window_frames=args.window_frames,
            window_bytes=args.window_bytes,
        )
    )
    store = FsyncStore(args.out)
    try:
        receiver.connect()
        while True:
            item = receiver.recv(timeout_s=1.0)
            if isinstance(item, ReceivedFrame):
                store.append(item)
                receiver.appended(item)
                if sum(store.appended.values()) % args.stored_every == 0:
                    store.sync()
                    for key, count in store.stored.items():
                        receiver.stored(key, count)
            elif isinstance(item, EndOfStream):
                store.close()
                for key, count in store.stored.items():
                    receiver.stored(key, count)
                receiver.finish({"frames": sum(store.stored.values()), "pid": os.getpid()})
                return 0
    finally:
        receiver.close()


if __name__ == "__main__":
    sys.exit(main())
