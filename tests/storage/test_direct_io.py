"""Direct I/O: aligned chunks are written around the page cache, placed at aligned offsets, and read back the same."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import numpy as np
import pytest

from daemon.storage import CompressionSettings, ZarrStream
from daemon.storage.chunk_buffers import allocate
from daemon.storage.file_store import DIRECT_ALIGNMENT, DIRECT_PIECE_BYTES, O_DIRECT, FileStore
from daemon.storage.memory_store import MemorySink, MemoryStore
from daemon.storage.shard import MIN_ALIGNED_BYTES, ShardBuilder, ShardIndex
from daemon.storage.sink import Sink
from tests.storage.support import dims, random_frames, read, settings


def direct_io_available(folder: Path) -> bool:
    sink = FileStore(folder).open_sink("probe")
    sink.abort()
    return sink.alignment > 1


@pytest.fixture
def direct_folder(tmp_path: Path) -> Path:
    if not direct_io_available(tmp_path / "probe"):
        pytest.skip(f"{tmp_path} does not accept O_DIRECT")
    return tmp_path


def aligned_bytes(nbytes: int, seed: int) -> np.ndarray:
    """Page-aligned memory (as a worker's reused compression buffer is) holding random bytes."""
    out = allocate((max(nbytes, 1 << 20),), np.dtype(np.uint8))[:nbytes]
    out[:] = np.random.default_rng(seed).integers(0, 256, nbytes, dtype=np.uint8)
    return out


def test_a_file_sink_asks_for_aligned_offsets_only_when_it_writes_directly(direct_folder: Path) -> None:
    assert FileStore(direct_folder / "a").open_sink("x").alignment == DIRECT_ALIGNMENT
    assert FileStore(direct_folder / "b", direct_io=False).open_sink("x").alignment == 1
    assert MemoryStore().open_sink("x").alignment == 1


def test_a_filesystem_without_direct_io_is_written_through_the_cache(tmp_path: Path, mocker) -> None:
    real_open = os.open

    def refuse_direct(path, flags, *args):  # what tmpfs or a FUSE filesystem answers
        if flags & O_DIRECT:
            raise OSError(errno.EINVAL, "Invalid argument")
        return real_open(path, flags, *args)

    mocker.patch("daemon.storage.file_store.os.open", side_effect=refuse_direct)
    sink = FileStore(tmp_path).open_sink("x")
    assert sink.alignment == 1
    data = aligned_bytes(3 * 4096, 3)
    sink.write(0, [data])
    sink.finalize()
    assert (tmp_path / "x").read_bytes() == data.tobytes()


@pytest.mark.parametrize("nbytes", [3 * DIRECT_ALIGNMENT + 100, 2 * DIRECT_ALIGNMENT, 100])
def test_aligned_and_unaligned_writes_land_byte_exact(direct_folder: Path, nbytes: int) -> None:
    store = FileStore(direct_folder)
    sink = store.open_sink("obj")
    first = aligned_bytes(nbytes, 1)  # aligned memory: its aligned head goes direct, the rest through the cache
    second = aligned_bytes(nbytes, 2).tobytes()  # unaligned memory: all through the cache
    gap = -(-nbytes // DIRECT_ALIGNMENT) * DIRECT_ALIGNMENT
    sink.write(0, [first])
    sink.write(gap, [second])
    sink.write(gap + nbytes, [b"tail"])
    sink.finalize()
    data = (direct_folder / "obj").read_bytes()
    assert data[:nbytes] == first.tobytes()
    assert data[nbytes:gap] == bytes(gap - nbytes)  # the gap reads as zeros
    assert data[gap:] == second + b"tail"


def test_a_direct_write_refused_by_the_device_is_written_through_the_cache(direct_folder: Path, mocker) -> None:
    real_open, real_pwritev = os.open, os.pwritev
    direct_fds: set[int] = set()

    def tracking_open(path, flags, *args):
        fd = real_open(path, flags, *args)
        (direct_fds.add if flags & O_DIRECT else direct_fds.discard)(fd)
        return fd

    def refusing_pwritev(fd, buffers, offset):  # a device whose logical blocks are larger than 4 KiB
        if fd in direct_fds:
            raise OSError(errno.EINVAL, "Invalid argument")
        return real_pwritev(fd, buffers, offset)

    mocker.patch("daemon.storage.file_store.os.open", side_effect=tracking_open)
    mocker.patch("daemon.storage.file_store.os.pwritev", side_effect=refusing_pwritev)
    sink = FileStore(direct_folder).open_sink("x")
    assert sink.alignment == DIRECT_ALIGNMENT
    data = aligned_bytes(3 * DIRECT_ALIGNMENT + 5, 4)
    sink.write(0, [data])
    assert sink.alignment == 1  # given up for this object
    sink.finalize()
    assert (direct_folder / "x").read_bytes() == data.tobytes()


def test_a_large_direct_write_goes_to_the_device_in_pieces(direct_folder: Path, mocker) -> None:
    real_open = os.open
    direct_fds: set[int] = set()

    def tracking_open(path, flags, *args):
        fd = real_open(path, flags, *args)
        (direct_fds.add if flags & O_DIRECT else direct_fds.discard)(fd)
        return fd

    mocker.patch("daemon.storage.file_store.os.open", side_effect=tracking_open)
    pwritev = mocker.spy(os, "pwritev")  # records the real calls
    nbytes = 2 * DIRECT_PIECE_BYTES + 3 * DIRECT_ALIGNMENT + 100
    data = aligned_bytes(nbytes, 5)
    sink = FileStore(direct_folder).open_sink("x")
    sink.write(DIRECT_ALIGNMENT, [data])
    sink.finalize()
    direct = [(c.args[2], sum(len(b) for b in c.args[1])) for c in pwritev.call_args_list if c.args[0] in direct_fds]
    head = nbytes - 100
    starts = range(DIRECT_ALIGNMENT, DIRECT_ALIGNMENT + head, DIRECT_PIECE_BYTES)
    assert direct == [(s, min(DIRECT_PIECE_BYTES, DIRECT_ALIGNMENT + head - s)) for s in starts]
    assert (direct_folder / "x").read_bytes() == bytes(DIRECT_ALIGNMENT) + data.tobytes()


class AlignedMemorySink(MemorySink):
    """A memory sink that asks for aligned offsets, like a direct-I/O file sink."""

    @property
    def alignment(self) -> int:
        return DIRECT_ALIGNMENT


class AlignedMemoryStore(MemoryStore):
    def open_sink(self, key: str) -> Sink:
        return AlignedMemorySink(self, key)


def test_large_chunks_are_placed_at_the_sinks_alignment_and_small_ones_back_to_back() -> None:
    store = AlignedMemoryStore()
    builder = ShardBuilder(store, "s", chunks=4)
    big_a, big_b = b"a" * (MIN_ALIGNED_BYTES + 1), b"b" * MIN_ALIGNED_BYTES
    builder.add([(2, b"c" * 10)])
    builder.add([(0, big_a)])  # alone and large: aligned
    builder.add([(1, b"d" * 5), (3, big_b)])  # several in one write: back to back
    builder.finalize()
    shard = store.objects["s"]
    index = ShardIndex.decode(shard[-(4 * 16 + 4) :])
    entries = [index.entry(p) for p in range(4)]
    end_a = DIRECT_ALIGNMENT + len(big_a)
    assert entries == [(DIRECT_ALIGNMENT, len(big_a)), (end_a, 5), (0, 10), (end_a + 5, len(big_b))]
    for (offset, nbytes), expected in zip(entries, [big_a, b"d" * 5, b"c" * 10, big_b], strict=True):
        assert shard[offset : offset + nbytes] == expected
    assert shard[10:DIRECT_ALIGNMENT] == bytes(DIRECT_ALIGNMENT - 10)


def test_small_chunks_take_no_more_room_with_direct_io(direct_folder: Path) -> None:
    path = direct_folder / "s.zarr"
    spec = dims([("t", "time", 0, 4), ("y", "space", 48, 16), ("x", "space", 64, 32)], shard=[2, 3, 2])
    frames = np.zeros((8, 48, 64), np.uint16)  # flat: 12 chunks of a few bytes each in one shard
    stream = ZarrStream(settings(path, spec, compression=CompressionSettings("blosc-lz4", 1)), store=FileStore(path))
    for frame in frames:
        stream.append(frame)
    stream.close()
    assert (path / "0" / "c" / "0" / "0" / "0").stat().st_size < 2048
    np.testing.assert_array_equal(read(path, "0"), frames)


@pytest.mark.parametrize("compression", [None, CompressionSettings("blosc-lz4", 1, "byte")], ids=["raw", "lz4"])
@pytest.mark.parametrize("direct", [True, False], ids=["direct", "cached"])
def test_large_chunks_round_trip_through_zarr_python(direct_folder: Path, compression, direct: bool) -> None:
    path = direct_folder / "s.zarr"
    spec = dims([("t", "time", 0, 8), ("y", "space", 1024, 512), ("x", "space", 512, 512)], shard=[1, 2, 1])
    frames = random_frames(20, 1024, 512, "uint16")  # chunks of 4 MiB: one job each, compressed into reused buffers
    stream = ZarrStream(settings(path, spec, compression=compression), store=FileStore(path, direct_io=direct))
    for frame in frames:
        stream.append(frame)
    stream.close()
    np.testing.assert_array_equal(read(path, "0"), frames)
    shard = (path / "0" / "c" / "0" / "0" / "0").read_bytes()
    entries = sorted(ShardIndex.decode(shard[-(2 * 16 + 4) :]).entry(p) for p in range(2))
    if direct:
        assert all(offset % DIRECT_ALIGNMENT == 0 for offset, _ in entries)
    else:  # back to back
        assert entries[0][0] == 0
        assert entries[1][0] == entries[0][1]
    assert json.loads((path / "0" / "zarr.json").read_text())["shape"] == [20, 1024, 512]
