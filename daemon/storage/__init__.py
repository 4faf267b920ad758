"""Streaming Zarr v2/v3 storage with OME-NGFF metadata, shaped like acquire-zarr's Python API.

>>> settings = StreamSettings(store_path="out.zarr", arrays=[ArraySettings(data_type="uint16", dimensions=[
...     Dimension("t", "time", 0, 64), Dimension("y", "space", 2048, 512), Dimension("x", "space", 2048, 512)])])
>>> with ZarrStream(settings) as stream:  # doctest: +SKIP
...     stream.append(frame)

Modules: ``settings`` (what to write), ``layout`` (frame -> chunk math), ``codec``, ``metadata``, ``shard``,
``sink`` (Store/Sink interfaces) with ``file_store``/``memory_store``, ``location`` (path -> store),
``chunk_buffers``, ``finalizer``, ``array_writer`` (one level), ``image_writer`` (one OME image), ``stream``.
"""

from daemon.storage.settings import (
    ArraySettings,
    CompressionCodec,
    CompressionSettings,
    DataType,
    Dimension,
    DimensionType,
    DownsamplingMethod,
    Shuffle,
    StreamSettings,
    ZarrVersion,
)
from daemon.storage.stats import StreamStats
from daemon.storage.stream import ZarrStream

__all__ = [
    "ArraySettings",
    "CompressionCodec",
    "CompressionSettings",
    "DataType",
    "Dimension",
    "DimensionType",
    "DownsamplingMethod",
    "Shuffle",
    "StreamSettings",
    "StreamStats",
    "ZarrStream",
    "ZarrVersion",
]
