"""Chunk compression: the numcodecs codec for a :class:`CompressionSettings`, and its Zarr v2/v3 JSON.

Design notes:
- Blosc1 (lz4, zstd, blosclz, zlib) with shuffle none/byte/bit, or plain Zstd; ``None`` stores raw bytes.
- :meth:`ChunkCodec.encode` takes the chunk as a typed numpy array, so Blosc's ``typesize`` is the item size and
  shuffling works. numcodecs releases the GIL while compressing, so several worker threads compress in parallel.
- Chunks are stored little-endian; the settings only admit little-endian dtypes.
- v3 JSON is what zarr-python writes and reads: a ``bytes`` codec (``endian: little``) then ``blosc``
  (cname/clevel/shuffle/typesize/blocksize) or ``zstd`` (level/checksum). v2 JSON is numcodecs' own config.
"""

from __future__ import annotations

from typing import Any

import numcodecs
import numpy as np
import numpy.typing as npt

from daemon.storage.settings import CompressionSettings, Shuffle

_BLOSC_SHUFFLE = {Shuffle.NONE: 0, Shuffle.BYTE: 1, Shuffle.BIT: 2}
_V3_SHUFFLE = {Shuffle.NONE: "noshuffle", Shuffle.BYTE: "shuffle", Shuffle.BIT: "bitshuffle"}

JSONDict = dict[str, Any]


class ChunkCodec:
    """Encodes chunks of one dtype with one compression setting (thread-safe: numcodecs codecs are stateless)."""

    def __init__(self, compression: CompressionSettings | None, dtype: np.dtype[Any]) -> None:
        self._compression = compression
        self._dtype = dtype
        self._codec: Any = None
        if compression is not None:
            codec = compression.codec_enum
            if codec.is_blosc:
                self._codec = numcodecs.Blosc(
                    cname=codec.value.removeprefix("blosc-"),
                    clevel=int(compression.level),
                    shuffle=_BLOSC_SHUFFLE[compression.shuffle_enum],
                    blocksize=0,
                )
            else:
                self._codec = numcodecs.Zstd(level=int(compression.level))

    @property
    def compresses(self) -> bool:
        return self._codec is not None

    def encode(self, chunk: npt.NDArray[Any]) -> bytes | memoryview:
        """The stored bytes of ``chunk`` (a C-contiguous array of the codec's dtype). Raw: a view, no copy."""
        if self._codec is None:
            return memoryview(chunk.data).cast("B")
        encoded: bytes = self._codec.encode(chunk)
        return encoded

    def v3_codecs(self) -> list[JSONDict]:
        """The ``codecs`` list of a v3 array (or the inner codecs of a shard)."""
        codecs: list[JSONDict] = [{"name": "bytes", "configuration": {"endian": "little"}}]
        compression = self._compression
        if compression is None:
            return codecs
        codec = compression.codec_enum
        if codec.is_blosc:
            codecs.append(
                {
                    "name": "blosc",
                    "configuration": {
                        "typesize": self._dtype.itemsize,
                        "cname": codec.value.removeprefix("blosc-"),
                        "clevel": int(compression.level),
                        "shuffle": _V3_SHUFFLE[compression.shuffle_enum],
                        "blocksize": 0,
                    },
                }
            )
        else:
            codecs.append({"name": "zstd", "configuration": {"level": int(compression.level), "checksum": False}})
        return codecs

    def v2_compressor(self) -> JSONDict | None:
        """The ``compressor`` of a v2 ``.zarray`` (None when raw)."""
        if self._codec is None:
            return None
        config: JSONDict = self._codec.get_config()
        return config
