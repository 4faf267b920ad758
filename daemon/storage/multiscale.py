"""The resolution levels of one image: their layouts, planned from the settings, and the downsampler feeding them.

:func:`plan_image_levels` lists level ``0`` (full resolution) and, with a ``downsampling_method``, the coarser
levels ``1``, ``2``... of :func:`daemon.storage.pyramid.plan_levels`, each with its own
:class:`~daemon.storage.layout.ArrayLayout`. A :class:`PyramidFeeder` pushes the level-0 frames through a
:class:`~daemon.storage.downsampler.Pyramid` and appends the frames it completes to each level's array writer.

Design notes:
- Downsampled axes: every dimension of type ``space`` (y and x, a z, and the append dimension when it is space);
  time, channel and other dimensions keep their size. Levels stop when every bounded space dimension fits in one
  chunk, or at ``max_levels`` (level 0 included).
- A level keeps level 0's chunk and shard sizes, clamped to its own size (quietly: that is expected of small
  levels); the codec and dimension names are level 0's.
- Streaming and bounded memory: the pyramid holds only partial output frames; a level receives a frame once its
  whole block of level-0 frames has arrived, so each level's array writer claims on disk only complete frames
  (like level 0, a row of objects at a time). Nothing is ever read back from the store.
- The end of a run: :meth:`PyramidFeeder.finish` reduces the partial blocks with the samples they have (an odd
  size, or a run stopped mid-block) so a ragged end reaches every level, before the writers flush.
- The downsampler runs on the appending thread. Measured on a 2048 x 2048 uint16 frame (8 MiB): 4.9 ms for
  ``mean`` (1.7 GB/s; numpy releases the GIL meanwhile), 2.1 ms for ``min``/``max``, 0.5 ms for ``decimate``,
  against ~1.5 ms to copy the frame into level 0's chunk buffers (5-7 GB/s, see ``chunk_buffers``). Compressing
  the extra levels (+1/3 of the bytes with y and x halved) costs more and already runs on the worker pool, so on
  a 2-core machine a separate pyramid thread would only compete with it; it would matter where many cores
  compress faster than ~1.3 GB/s.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from daemon.errors import ConfigError
from daemon.storage import metadata
from daemon.storage.array_writer import ArrayWriter
from daemon.storage.downsampler import Pyramid
from daemon.storage.layout import ArrayLayout, build_layout
from daemon.storage.pyramid import plan_levels
from daemon.storage.settings import ArraySettings, Dimension, DimensionType


@dataclass(frozen=True, slots=True)
class PlannedLevel:
    """One level of an image: its path and scale factors (for the OME metadata) and its layout."""

    level: metadata.Level
    layout: ArrayLayout


def downsample_axes(dims: Sequence[Dimension]) -> tuple[int, ...]:
    """The indices of the dimensions a pyramid halves: those of type space."""
    return tuple(i for i, d in enumerate(dims) if d.kind is DimensionType.SPACE)


def plan_image_levels(settings: ArraySettings, level0: ArrayLayout) -> tuple[PlannedLevel, ...]:
    """Level 0 with ``level0``'s layout and, with a downsampling method, the coarser levels."""
    ndim = len(settings.dimensions)
    first = PlannedLevel(metadata.Level("0", (1.0,) * ndim), level0)
    if settings.method is None:
        return (first,)
    axes = downsample_axes(settings.dimensions)
    levels = plan_levels(level0.shape, level0.chunks, axes, settings.max_levels)
    names = [d.name for d in settings.dimensions]
    planned = [first]
    for n, level in enumerate(levels[1:], start=1):
        layout, _ = build_layout(names, level.shape, level0.chunks, level0.shard_chunks)
        planned.append(PlannedLevel(metadata.Level(str(n), tuple(float(f) for f in level.scale)), layout))
    return tuple(planned)


class PyramidFeeder:
    """Downsamples level-0 frames and appends the frames of levels 1.. to their writers (appending thread)."""

    def __init__(self, settings: ArraySettings, levels: Sequence[PlannedLevel], writers: Sequence[ArrayWriter]) -> None:
        if settings.method is None or len(levels) < 2 or len(writers) != len(levels):
            raise ConfigError(
                f"a pyramid needs a downsampling_method and one writer per level, two levels or more. Got method "
                f"{settings.downsampling_method!r}, {len(levels)} levels and {len(writers)} writers instead."
            )
        self._writers = tuple(writers)
        self._pyramid = Pyramid(
            levels[0].layout.shape,
            downsample_axes(settings.dimensions),
            settings.method,
            settings.dtype,
            len(levels),
        )

    @property
    def pyramid(self) -> Pyramid:
        return self._pyramid

    def append(self, frames: npt.NDArray[Any]) -> None:
        """Push ``frames`` (n, y, x) of level 0; append each completed frame to its level's writer."""
        writers = self._writers
        for frame in frames:
            for level, out in self._pyramid.push(frame):
                writers[level].append(out[np.newaxis])  # the writer copies: the pyramid reuses ``out``

    def finish(self) -> None:
        """The run ended: reduce the partial blocks and append them (every level's ragged end). Idempotent."""
        for level, out in self._pyramid.finish():
            self._writers[level].append(out[np.newaxis])
