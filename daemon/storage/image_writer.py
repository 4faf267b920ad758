"""One OME-NGFF image: the group at an array's output key and its resolution levels ``0``, ``1``...

Only level ``0`` (full resolution) exists for now. A level is a :class:`~daemon.storage.metadata.Level` (its path
and per-dimension scale factors) plus the :class:`~daemon.storage.array_writer.ArrayWriter` storing it; the
multiscale work adds levels fed by the downsampler, and the OME metadata already lists every level.

Design notes:
- The layout is built here from the settings: chunks larger than a fixed dimension (and shards larger than the
  chunk count) are clamped, with one log line each.
- A dimension list that OME-NGFF cannot describe is still written as Zarr, without OME attributes, with a
  warning (``ome_metadata_skipped``).
"""

from __future__ import annotations

from concurrent.futures import Executor
from typing import Any

import numpy.typing as npt

from daemon.log import get_logger
from daemon.storage import metadata
from daemon.storage.array_writer import ArrayTarget, ArrayWriter
from daemon.storage.codec import ChunkCodec, JSONDict
from daemon.storage.finalizer import Finalizer
from daemon.storage.latch import ErrorLatch
from daemon.storage.layout import ArrayLayout, build_layout
from daemon.storage.settings import ArraySettings, ZarrVersion
from daemon.storage.sink import Store
from daemon.storage.stats import Counters

log = get_logger(__name__)


def level0_layout(settings: ArraySettings, version: ZarrVersion) -> ArrayLayout:
    """The full-resolution layout of ``settings`` (clamped; clamps are logged)."""
    dims = settings.dimensions
    sharded = version is ZarrVersion.V3 and settings.sharded
    layout, clamps = build_layout(
        [d.name for d in dims],
        [d.array_size_px for d in dims],
        [d.chunk_size_px for d in dims],
        [d.shard_size_chunks for d in dims] if sharded else None,
    )
    for clamp in clamps:
        log.info(
            "chunk_clamped",
            array=settings.output_key,
            dimension=clamp.dimension,
            field=clamp.field,
            requested=clamp.requested,
            used=clamp.used,
        )
    return layout


class ImageWriter:
    def __init__(
        self,
        settings: ArraySettings,
        version: ZarrVersion,
        store: Store,
        executor: Executor,
        finalizer: Finalizer,
        latch: ErrorLatch,
        counters: Counters,
    ) -> None:
        self._settings = settings
        self._version = version
        dims = settings.dimensions
        layout = level0_layout(settings, version)
        codec = ChunkCodec(settings.compression, settings.dtype)
        level = metadata.Level("0", (1.0,) * len(dims))
        target = ArrayTarget(
            store=store,
            path=metadata.join(settings.output_key, level.path),
            version=version,
            layout=layout,
            dtype=settings.dtype,
            codec=codec,
            dimension_names=tuple(d.name for d in dims),
        )
        self.levels: list[metadata.Level] = [level]
        self.writers: list[ArrayWriter] = [ArrayWriter(target, executor, finalizer, latch, counters)]
        self.ome_problems = metadata.ome_problems(dims)
        if self.ome_problems:
            log.warning(
                "ome_metadata_skipped",
                array=settings.output_key,
                dimensions=[f"{d.name}:{d.kind.value}" for d in dims],
                reasons=self.ome_problems,
            )

    @property
    def key(self) -> str:
        return self._settings.output_key

    @property
    def settings(self) -> ArraySettings:
        return self._settings

    @property
    def layout(self) -> ArrayLayout:
        return self.writers[0].target.layout

    @property
    def full(self) -> ArrayWriter:
        """The full-resolution level (what frames are appended to)."""
        return self.writers[0]

    def group_attributes(self) -> JSONDict:
        """The image group's attributes: OME-NGFF multiscales, or nothing when the layout cannot be OME."""
        if self.ome_problems:
            return {}
        name = self.key.rsplit("/", 1)[-1] if self.key else "image"
        multiscale = metadata.ome_multiscale(self._settings.dimensions, self.levels, name)
        return metadata.ome_image_attributes(self._version, multiscale)

    def append(self, frames: npt.NDArray[Any]) -> None:
        self.full.append(frames)
