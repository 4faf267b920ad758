"""Compression into reused buffers: byte-identical to numcodecs, one buffer per thread, a fallback when unavailable."""

from __future__ import annotations

import threading

import numcodecs
import numpy as np
import pytest

from daemon.storage import CompressionSettings
from daemon.storage import codec as codec_module
from daemon.storage.chunk_buffers import allocate
from daemon.storage.codec import BLOSC_MAX_OVERHEAD, ChunkCodec


def chunk_of(dtype: str, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.poisson(200, (4, 64, 96)) + np.arange(96)).astype(dtype)


BLOSC = [CompressionSettings(c, level, s) for c in ("blosc-lz4", "blosc-zstd", "blosc-blosclz", "blosc-zlib")
         for level, s in ((1, "byte"), (5, "bit"), (0, "none"))]  # fmt: skip


@pytest.mark.parametrize("compression", BLOSC, ids=str)
@pytest.mark.parametrize("dtype", ["uint8", "uint16", "int32", "float64"])
def test_reused_buffer_output_is_byte_identical_to_numcodecs(compression: CompressionSettings, dtype: str) -> None:
    chunk = chunk_of(dtype)
    codec = ChunkCodec(compression, chunk.dtype)
    assert codec.scratch_bytes(chunk.nbytes) == chunk.nbytes + BLOSC_MAX_OVERHEAD  # the direct path is in use
    assert bytes(codec.encode_reusing(chunk)) == bytes(codec.encode(chunk))
    config = codec.v2_compressor()
    assert config is not None
    decoded = np.frombuffer(numcodecs.get_codec(config).decode(codec.encode_reusing(chunk)), chunk.dtype)
    np.testing.assert_array_equal(decoded, chunk.ravel())


def test_a_thread_reuses_one_buffer_and_threads_do_not_share_it() -> None:
    codec = ChunkCodec(CompressionSettings("blosc-lz4", 1, "byte"), np.dtype("uint16"))
    big, small = chunk_of("uint16", 1), chunk_of("uint16", 2)[:2]
    first = codec.encode_reusing(big)
    address = np.frombuffer(first, np.uint8).ctypes.data
    expected_small = bytes(codec.encode(small))
    second = codec.encode_reusing(small)  # smaller: same buffer, overwritten
    assert np.frombuffer(second, np.uint8).ctypes.data == address
    assert bytes(second) == expected_small
    results: dict[int, bytes] = {}
    barrier = threading.Barrier(4)

    def encode(seed: int) -> None:
        chunk = chunk_of("uint16", seed)
        barrier.wait()
        for _ in range(20):
            view = codec.encode_reusing(chunk)
        results[seed] = bytes(view)

    threads = [threading.Thread(target=encode, args=(seed,)) for seed in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == {seed: bytes(codec.encode(chunk_of("uint16", seed))) for seed in range(4)}


def test_raw_and_zstd_chunks_need_no_reused_buffer() -> None:
    chunk = chunk_of("uint16")
    raw = ChunkCodec(None, chunk.dtype)
    assert raw.scratch_bytes(chunk.nbytes) == 0
    assert bytes(raw.encode_reusing(chunk)) == chunk.tobytes()
    zstd = ChunkCodec(CompressionSettings("zstd", 3), chunk.dtype)
    assert zstd.scratch_bytes(chunk.nbytes) == 0
    assert bytes(zstd.encode_reusing(chunk)) == bytes(zstd.encode(chunk))


def test_without_the_direct_entry_point_numcodecs_does_the_work(mocker) -> None:
    mocker.patch.object(codec_module, "_blosc_fn", [None])  # as if numcodecs' Blosc did not export it
    chunk = chunk_of("uint16")
    codec = ChunkCodec(CompressionSettings("blosc-lz4", 1, "byte"), chunk.dtype)
    assert codec.scratch_bytes(chunk.nbytes) == 0
    encoded = codec.encode_reusing(chunk)
    assert isinstance(encoded, bytes)
    assert encoded == numcodecs.Blosc("lz4", 1, 1, 0).encode(chunk)


def test_allocated_buffers_are_zeroed_writable_and_page_aligned_when_large() -> None:
    big = allocate((3, 1024, 1024), np.dtype("uint16"))
    assert big.shape == (3, 1024, 1024)
    assert big.flags.c_contiguous
    assert big.flags.writeable
    assert big.ctypes.data % 4096 == 0
    assert not big.any()
    big[1, 2, 3] = 7
    assert int(big.sum()) == 7
    small = allocate((4, 4), np.dtype("float32"))
    assert small.shape == (4, 4)
    assert not small.any()
