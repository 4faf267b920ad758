"""Codecs: what they store decodes back with numcodecs, and their v2/v3 JSON."""

from __future__ import annotations

import numcodecs
import numpy as np
import pytest

from daemon.storage import CompressionSettings
from daemon.storage.codec import BLOSC_BLOCK_BYTES, ChunkCodec


@pytest.mark.parametrize(
    "compression",
    [CompressionSettings(c, 5, s) for c in ("blosc-lz4", "blosc-zstd", "blosc-blosclz", "blosc-zlib")
     for s in ("none", "byte", "bit")] + [CompressionSettings("zstd", -5), CompressionSettings("zstd", 22)],
    ids=str,
)  # fmt: skip
def test_encoded_chunks_decode_with_the_v2_config(compression: CompressionSettings) -> None:
    chunk = np.arange(4096, dtype=np.uint16).reshape(4, 32, 32) % 300
    codec = ChunkCodec(compression, chunk.dtype)
    encoded = codec.encode(chunk)
    config = codec.v2_compressor()
    assert config is not None
    decoded = np.frombuffer(numcodecs.get_codec(config).decode(encoded), np.uint16)
    np.testing.assert_array_equal(decoded, chunk.ravel())


def test_blosc_shuffles_with_the_item_size() -> None:
    chunk = np.arange(65536, dtype=np.uint32)
    shuffled = ChunkCodec(CompressionSettings("blosc-lz4", 1, "byte"), chunk.dtype).encode(chunk)
    plain = ChunkCodec(CompressionSettings("blosc-lz4", 1, "none"), chunk.dtype).encode(chunk)
    assert len(shuffled) < len(plain) / 2


def test_raw_chunks_are_the_bytes_without_a_copy() -> None:
    chunk = np.arange(12, dtype=np.int16).reshape(3, 4)
    codec = ChunkCodec(None, chunk.dtype)
    encoded = codec.encode(chunk)
    assert isinstance(encoded, memoryview)
    assert bytes(encoded) == chunk.tobytes()
    assert codec.v2_compressor() is None
    assert codec.v3_codecs() == [{"name": "bytes", "configuration": {"endian": "little"}}]


def test_v3_json_for_zstd_and_blosc() -> None:
    zstd = ChunkCodec(CompressionSettings("zstd", 7), np.dtype("float32")).v3_codecs()
    assert zstd[1] == {"name": "zstd", "configuration": {"level": 7, "checksum": False}}
    blosc = ChunkCodec(CompressionSettings("blosc-zlib", 2, "none"), np.dtype("int64")).v3_codecs()
    assert blosc[1] == {
        "name": "blosc",
        "configuration": {"typesize": 8, "cname": "zlib", "clevel": 2, "shuffle": "noshuffle", "blocksize": 1 << 20},
    }


@pytest.mark.parametrize("reusing", [False, True])
def test_blosc_chunks_use_the_block_size_the_metadata_names(reusing: bool) -> None:
    codec = ChunkCodec(CompressionSettings("blosc-zstd", 1, "byte"), np.dtype("uint16"))
    chunk = (np.arange(4 << 20, dtype=np.uint16) % 4000).reshape(64, 256, 256)  # 8 MiB: several blocks
    encoded = bytes(codec.encode_reusing(chunk) if reusing else codec.encode(chunk))
    header_blocksize = int.from_bytes(encoded[8:12], "little")  # Blosc1 header: nbytes, blocksize, cbytes
    assert header_blocksize == BLOSC_BLOCK_BYTES == codec.v3_codecs()[1]["configuration"]["blocksize"]
    assert codec.v2_compressor()["blocksize"] == BLOSC_BLOCK_BYTES
    decoded = np.frombuffer(numcodecs.Blosc().decode(encoded), dtype=np.uint16)
    assert np.array_equal(decoded, chunk.ravel())
