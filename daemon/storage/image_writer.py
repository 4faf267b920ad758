"""One OME-NGFF image: the group at an array's output key and its resolution levels ``0``, ``1``...

Level ``0`` (full resolution) receives the frames appended; with a ``downsampling_method`` the coarser levels
(planned by :mod:`daemon.storage.multiscale`) receive what the downsampler makes of them. Each level is a
:class:`~daemon.storage.metadata.Level` (its path and per-dimension scale factors) plus the
:class:`~daemon.storage.array_writer.ArrayWriter` storing it; the OME metadata lists every level.

Design notes:
- The layout is built here from the settings: chunks larger than a fixed dimension (and shards larger than the
  chunk count) are clamped, with one log line each (level 0; the smaller levels are clamped quietly).
- A dimension list that OME-NGFF cannot describe is still written as Zarr, without OME attributes, with a
  warning (``ome_metadata_skipped``).
- What is acknowledged (``frames_stored``) is level 0's: the coarser levels claim a frame only once its whole block
  of level-0 frames is stored, so they lag behind level 0 while running and catch up at close.
- Appending to an existing image (``starts``, one :class:`~daemon.storage.array_writer.WriterStart` per level, from
  :mod:`daemon.storage.append_plan`): every level starts at the same dimension-0 index, which the plan allows only
  when dimension 0 is not downsampled, so a fresh downsampler starting there sees whole blocks.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import Executor
from typing import Any

import numpy.typing as npt

from daemon.errors import ConfigError
from daemon.log import get_logger
from daemon.storage import metadata
from daemon.storage.array_writer import ArrayTarget, ArrayWriter, WriterStart
from daemon.storage.codec import ChunkCodec, JSONDict
from daemon.storage.finalizer import Finalizer
from daemon.storage.latch import ErrorLatch
from daemon.storage.layout import ArrayLayout, build_layout
from daemon.storage.multiscale import PyramidFeeder, plan_image_levels
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
        starts: Sequence[WriterStart] | None = None,
        workers: int = 1,
    ) -> None:
        self._settings = settings
        self._version = version
        dims = settings.dimensions
        codec = ChunkCodec(settings.compression, settings.dtype)
        planned = plan_image_levels(settings, level0_layout(settings, version))
        self.levels: list[metadata.Level] = [p.level for p in planned]
        names = tuple(d.name for d in dims)
        self.writers: list[ArrayWriter] = []
        if starts is not None and len(starts) != len(planned):
            raise ConfigError(
                f"array {settings.output_key!r} has {len(planned)} levels; appending to it needs one start per "
                f"level. Got {len(starts)} instead."
            )
        for n, p in enumerate(planned):
            path = metadata.join(settings.output_key, p.level.path)
            target = ArrayTarget(store, path, version, p.layout, settings.dtype, codec, names)
            start = None if starts is None else starts[n]
            self.writers.append(ArrayWriter(target, executor, finalizer, latch, counters, start=start, workers=workers))
        self._feeder = PyramidFeeder(settings, planned, self.writers) if len(planned) > 1 else None
        if self._feeder is not None:
            log.info(
                "pyramid_planned",
                array=settings.output_key,
                method=self._feeder.pyramid.method,
                shapes=[list(p.layout.shape) for p in planned],
            )
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
    def scratch_bytes(self) -> int:
        """The compression output buffer each worker thread keeps for this image (its levels share the codec)."""
        return max(writer.scratch_bytes for writer in self.writers)

    @property
    def full(self) -> ArrayWriter:
        """The full-resolution level (what frames are appended to)."""
        return self.writers[0]

    def group_attributes(self) -> JSONDict:
        """The image group's attributes: OME-NGFF multiscales, or nothing when the layout cannot be OME."""
        if self.ome_problems:
            return {}
        name = self.key.rsplit("/", 1)[-1] if self.key else "image"
        method = self._settings.method
        multiscale = metadata.ome_multiscale(
            self._settings.dimensions, self.levels, name, None if method is None else method.value
        )
        return metadata.ome_image_attributes(self._version, multiscale)

    def append(self, frames: npt.NDArray[Any]) -> None:
        """Append level-0 frames (n, y, x) and what they complete of the coarser levels."""
        self.full.append(frames)
        if self._feeder is not None:
            self._feeder.append(frames)

    def flush_all(self) -> None:
        """End of acquisition: the pyramid's ragged ends reach every level, then every level flushes."""
        if self._feeder is not None:
            self._feeder.finish()
        for writer in self.writers:
            writer.flush_all()

    def frames_stored_by_level(self) -> tuple[int, ...]:
        """Frames each level's metadata on disk claims (level 0 first)."""
        return tuple(writer.frames_stored for writer in self.writers)
