"""The composition the pipeline will make: sender -> receiver -> the real storage engine -> stored acks.

Acknowledgements follow ``ZarrStream.frames_stored``: a frame counts as stored on the acquisition side only once
its chunk is written, never merely because it was appended.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from daemon.ipc.frame_receiver import FrameReceiver
from daemon.ipc.frame_sender import FrameSender
from daemon.ipc.stream_status import SenderState
from daemon.storage import ArraySettings, Dimension, StreamSettings, ZarrStream

from .stream_helpers import WorkerLoop, make_frame, wait_until

CHUNK_T = 4


def test_sender_counts_stored_only_what_the_engine_reports_stored(
    tmp_path: Path, make_sender: Callable[..., FrameSender], make_receiver: Callable[..., FrameReceiver]
) -> None:
    dimensions = [Dimension("t", "time", 0, CHUNK_T), Dimension("y", "space", 8, 8), Dimension("x", "space", 16, 16)]
    array = ArraySettings(output_key="cam", data_type="uint16", compression=None, dimensions=dimensions)
    stream = ZarrStream(StreamSettings(store_path=str(tmp_path / "out.zarr"), version=3, arrays=[array]))
    sender = make_sender(config={"store_path": str(tmp_path / "out.zarr")})
    receiver = make_receiver(sender.endpoint)
    receiver.connect()
    worker = WorkerLoop(receiver, stream).start()
    for i in range(6):
        assert sender.offer(make_frame(i, (8, 16), np.uint16), "cam") is None
    wait_until(lambda: sender.stats().frames_stored == CHUNK_T, what="the first chunk acknowledged")
    stats = sender.stats()
    assert stats.unacked_frames == 2  # appended to the engine, but their chunk is not complete
    assert stats.balance.balanced

    result = sender.finish(timeout_s=10.0)
    worker.stop()
    assert result.state is SenderState.FINISHED
    assert (result.stats.frames_stored, result.stats.balance.in_flight) == (6, 0)
    assert stream.frames_stored("cam") == 6
    assert (tmp_path / "out.zarr" / "cam" / "0" / "zarr.json").exists()
