"""While a pyramid streams, every level's metadata on disk claims only complete, correct frames; acknowledgements
count level 0; nothing is read back from the store; memory stays bounded however long the run.
"""

from __future__ import annotations

import contextlib
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import zarr

from daemon.errors import StorageError
from daemon.storage import ZarrStream
from daemon.storage.memory_store import MemoryStore
from tests.storage.multiscale_support import Spec, assert_level_equal, pyramid_settings, reference_pyramid
from tests.storage.support import random_frames

ZYX: Spec = [("z", "space", 0, 1), ("y", "space", 16, 4), ("x", "space", 12, 4)]  # levels: 16x12, 8x6, 4x3
TZYX: Spec = [("t", "time", 0, 1), ("z", "space", 4, 2), ("y", "space", 8, 4), ("x", "space", 8, 4)]


def wait_for_levels(stream: ZarrStream, wanted: tuple[int, ...], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while stream.frames_stored_by_level() != wanted:
        got = stream.frames_stored_by_level()
        assert all(g <= w for g, w in zip(got, wanted, strict=True)), f"claimed {got}, at most {wanted} expected"
        assert time.monotonic() < deadline, f"levels stored {got}, expected {wanted}"
        time.sleep(0.01)


def assert_claims_are_correct(path: Path, frames: np.ndarray, spec: Spec, method: str, levels: int) -> list[int]:
    """Each level's claimed extent along dimension 0, after checking it against the reference of every frame."""
    claimed = []
    for n, want in enumerate(reference_pyramid(frames, spec, method, levels)):
        data = np.asarray(zarr.open_array(str(path), path=str(n), mode="r")[...])
        assert_level_equal(data, want.values[: data.shape[0]], method, f"level {n}")
        claimed.append(data.shape[0])
    return claimed


@pytest.mark.parametrize("version", [2, 3])
def test_coarser_levels_claim_a_frame_only_once_its_block_is_stored(tmp_path: Path, version: int) -> None:
    path = tmp_path / "s.zarr"
    frames = random_frames(7, 16, 12, "uint16")
    with ZarrStream(pyramid_settings(path, ZYX, "mean", version=version)) as stream:
        stream.append(frames[:5])  # z 0..4: level 1 has z-blocks {0,1} {2,3}; level 2 has {0..3}
        wait_for_levels(stream, (5, 2, 1))
        time.sleep(0.3)  # give a wrong implementation time to claim more
        assert stream.frames_stored_by_level() == (5, 2, 1)
        assert stream.frames_stored() == 5  # acknowledgements are level 0's
        assert assert_claims_are_correct(path, frames[:5], ZYX, "mean", 3) == [5, 2, 1]
        stream.append(frames[5:])
        wait_for_levels(stream, (7, 3, 1))
    assert stream.frames_stored_by_level() == (7, 4, 2)  # close: the ragged ends reach every level
    assert stream.stats().frames_stored == stream.stats().frames_appended == 7
    assert assert_claims_are_correct(path, frames, ZYX, "mean", 3) == [7, 4, 2]


def test_an_unfinished_z_stack_stays_unclaimed_on_every_level(tmp_path: Path) -> None:
    path = tmp_path / "s.zarr"
    frames = random_frames(10, 8, 8, "int32")
    settings = pyramid_settings(path, TZYX, "max", shards=[1, 2, 2, 2], dtype="int32")
    with ZarrStream(settings) as stream:
        stream.append(frames)  # t 0 and 1 whole, t 2 holds z 0 and 1: level 1 has its (t 2, z 0) frame
        wait_for_levels(stream, (8, 4))
        time.sleep(0.3)
        assert stream.frames_stored_by_level() == (8, 4)
        assert assert_claims_are_correct(path, frames[:8], TZYX, "max", 2) == [2, 2]
    assert stream.frames_stored_by_level() == (10, 5)
    assert assert_claims_are_correct(path, frames, TZYX, "max", 2) == [3, 3]


def test_a_write_failure_leaves_every_level_claiming_only_correct_frames(tmp_path: Path) -> None:
    path = tmp_path / "s.zarr"
    frames = random_frames(12, 16, 12, "uint16")
    stream = ZarrStream(pyramid_settings(path, ZYX, "min"))
    stream.append(frames[:4])
    wait_for_levels(stream, (4, 2, 1))
    (path / "1" / "c" / "3").write_bytes(b"in the way")  # where level 1's z = 3 (level-0 z 6, 7) goes
    stream.append(frames[4:7])
    with contextlib.suppress(StorageError):  # the failure may surface here already; close reports it anyway
        stream.append(frames[7])  # completes level 1's z = 3: its chunk cannot be written
    with pytest.raises(StorageError, match=str(path / "1" / "c" / "3")):
        stream.close()
    stream.close()  # idempotent
    claimed = assert_claims_are_correct(path, frames, ZYX, "min", 3)
    assert claimed[1] <= 3
    assert claimed[0] >= 4
    assert stream.frames_stored_by_level()[1] == claimed[1]


class NoReadBackStore(MemoryStore):
    """A memory store that counts reads (the engine must never read what it wrote)."""

    def __init__(self) -> None:
        super().__init__()
        self.reads = 0

    def get(self, key: str) -> bytes | None:
        self.reads += 1
        return super().get(key)


def test_the_pyramid_never_reads_the_store(tmp_path: Path) -> None:
    store = NoReadBackStore()
    settings = pyramid_settings(tmp_path / "unused.zarr", TZYX, "mean", shards=[2, 1, 1, 1])
    with ZarrStream(settings, store=store) as stream:
        stream.append(random_frames(22, 8, 8, "uint16"))
    assert stream.frames_stored_by_level() == (22, 11)  # 5 whole z-stacks and z 0, 1 of a sixth
    assert store.reads == 0
    assert any(key.startswith("1/c/") for key in store.objects)


BUFFER_MODULES = ("*/daemon/storage/downsampler.py", "*/daemon/storage/chunk_buffers.py")


def peak_buffer_bytes(path: Path, n_frames: int) -> int:
    """The most memory the pyramid and the chunk buffers of every level hold at once while streaming ``n_frames``.

    Measured with tracemalloc (numpy buffers included), counting only what those modules allocated and still hold
    (the finalizer's queue of small tasks is the engine's, not the pyramid's).
    """
    spec: Spec = [("z", "space", 0, 2), ("y", "space", 128, 32), ("x", "space", 96, 32)]
    rng = np.random.default_rng(0)
    filters = [tracemalloc.Filter(True, pattern) for pattern in BUFFER_MODULES]
    peak = 0
    tracemalloc.start(1)  # the innermost Python frame: the line that asked numpy for memory
    try:
        with ZarrStream(pyramid_settings(path, spec, "mean")) as stream:
            for k in range(n_frames):
                stream.append(rng.integers(0, 4096, size=(128, 96), dtype=np.uint16))
                if k % 24 == 23:
                    held = tracemalloc.take_snapshot().filter_traces(filters).statistics("filename")
                    peak = max(peak, sum(stat.size for stat in held))
    finally:
        tracemalloc.stop()
    assert stream.frames_stored_by_level() == (n_frames, -(-n_frames // 2), -(-n_frames // 4))
    return peak


@pytest.mark.slow
def test_memory_does_not_grow_with_the_run(tmp_path: Path) -> None:
    short = peak_buffer_bytes(tmp_path / "short.zarr", 48)
    long = peak_buffer_bytes(tmp_path / "long.zarr", 192)  # 4.7 MB of frames, 4 times the short run
    assert 0 < long <= short * 1.25, (short, long)
