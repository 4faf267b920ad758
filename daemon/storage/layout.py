"""Pure layout math of one array level: frame index -> chunk group, slot, storage object; ragged ends.

Vocabulary (``ns`` = the non-spatial dimensions, all but the last two):
- a *frame* fills one ``(y, x)`` plane; frame ``k`` walks the non-spatial dimensions in C order (the last
  non-spatial dimension fastest; dimension 0 slowest, possibly unbounded).
- a *chunk group* is every chunk sharing one non-spatial chunk index: all the ``(y, x)`` tiles a frame touches.
  A frame lands in exactly one group, at one *slot* (its position inside the chunk along the non-spatial dims).
- an *object* is what the store holds as one key: a shard (``shard_chunks`` chunks per dimension) or, unsharded,
  a single chunk. Objects along dimension 0 come in *rows* of ``row_extent`` indices; the metadata may claim a row
  once every object of it is finalized.

Design notes:
- No I/O, no numpy buffers: integers and tuples only, so every rule here is unit-tested in isolation.
- :func:`build_layout` clamps a chunk larger than a fixed dimension to that dimension, and a shard larger than the
  chunk count along a fixed dimension to that count (as acquire-zarr does); it returns what it clamped so the
  caller can log it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from daemon.errors import ConfigError


@dataclass(frozen=True, slots=True)
class Clamp:
    """A size that was reduced to fit its dimension."""

    dimension: str
    field: str
    requested: int
    used: int


@dataclass(frozen=True, slots=True)
class FramePosition:
    group: tuple[int, ...]  # the non-spatial chunk index
    slot: tuple[int, ...]  # the position inside the chunk, non-spatial dims


@dataclass(frozen=True, slots=True)
class ArrayLayout:
    """Shape, chunking and sharding of one array level. ``shape[0] == 0`` means unbounded (append)."""

    shape: tuple[int, ...]
    chunks: tuple[int, ...]
    shard_chunks: tuple[int, ...] | None = None  # chunks per shard per dimension; None: unsharded
    _inner_sizes: tuple[int, ...] = field(init=False, repr=False, compare=False)
    _frames_per_outer: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not len(self.shape) == len(self.chunks) >= 3:
            raise ConfigError(f"layout needs >= 3 dimensions with one chunk size each. Got {self!r}.")
        if self.shard_chunks is not None and len(self.shard_chunks) != len(self.shape):
            raise ConfigError(f"layout needs one shard size per dimension. Got {self.shard_chunks!r}.")
        if any(s < 1 for s in self.shape[1:]) or any(c < 1 for c in self.chunks):
            raise ConfigError(f"layout sizes must be >= 1 (shape[0] may be 0). Got {self!r}.")
        inner = self.shape[1 : self.ns]
        object.__setattr__(self, "_inner_sizes", inner)
        object.__setattr__(self, "_frames_per_outer", math.prod(inner))

    # -- dimensions ---------------------------------------------------------------------------------------------

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def ns(self) -> int:
        """How many non-spatial dimensions (all but y and x)."""
        return len(self.shape) - 2

    @property
    def appendable(self) -> bool:
        return self.shape[0] == 0

    @property
    def frame_shape(self) -> tuple[int, int]:
        return self.shape[-2], self.shape[-1]

    @property
    def frames_per_outer(self) -> int:
        """Frames per index of dimension 0."""
        return self._frames_per_outer

    @property
    def capacity(self) -> int | None:
        """How many frames fit, or None when dimension 0 is unbounded."""
        return None if self.appendable else self.shape[0] * self._frames_per_outer

    @property
    def sharded(self) -> bool:
        return self.shard_chunks is not None

    @property
    def object_chunks(self) -> tuple[int, ...]:
        """Chunks per storage object per dimension (all ones when unsharded)."""
        return self.shard_chunks if self.shard_chunks is not None else (1,) * self.ndim

    @property
    def object_shape(self) -> tuple[int, ...]:
        """Elements per storage object per dimension (the v3 chunk grid)."""
        return tuple(c * s for c, s in zip(self.chunks, self.object_chunks, strict=True))

    def chunk_count(self, dim: int) -> int:
        """Chunks along a fixed dimension."""
        return -(-self.shape[dim] // self.chunks[dim])

    def object_count(self, dim: int) -> int:
        """Objects along a fixed dimension."""
        return -(-self.chunk_count(dim) // self.object_chunks[dim])

    @property
    def tiles(self) -> tuple[int, int]:
        """Chunks along y and x."""
        return self.chunk_count(self.ndim - 2), self.chunk_count(self.ndim - 1)

    @property
    def chunks_per_group(self) -> int:
        return self.tiles[0] * self.tiles[1]

    # -- frames -> groups ---------------------------------------------------------------------------------------

    def frame_position(self, k: int) -> FramePosition:
        """Where frame ``k`` goes (no bounds check: see :attr:`capacity`)."""
        outer, rem = divmod(k, self._frames_per_outer)
        coords = [0] * self.ns
        coords[0] = outer
        for d in range(self.ns - 1, 0, -1):
            rem, coords[d] = divmod(rem, self.shape[d])
        chunks = self.chunks
        return FramePosition(
            group=tuple(c // chunks[d] for d, c in enumerate(coords)),
            slot=tuple(c % chunks[d] for d, c in enumerate(coords)),
        )

    def extent(self, dim: int, chunk_index: int) -> int:
        """In-bounds length of chunk ``chunk_index`` along ``dim`` (ragged at a fixed dimension's end)."""
        if dim == 0 and self.appendable:
            return self.chunks[0]
        return min(self.chunks[dim], self.shape[dim] - chunk_index * self.chunks[dim])

    def group_slots(self, group: Sequence[int]) -> int:
        """How many frames complete ``group``."""
        return math.prod(self.extent(d, g) for d, g in enumerate(group))

    def max_open_groups(self) -> int:
        """The most groups under construction at once while frames arrive in order.

        A group stays open while frames walk every dimension inside the outermost non-spatial dimension whose
        chunk holds more than one index; all groups sharing that outer index are then open together.
        """
        for d in range(self.ns):
            if self.chunks[d] > 1:
                return math.prod(self.chunk_count(i) for i in range(d + 1, self.ns))
        return 1

    # -- groups -> objects --------------------------------------------------------------------------------------

    def group_object(self, group: Sequence[int]) -> tuple[int, ...]:
        """The non-spatial object index holding ``group``."""
        oc = self.object_chunks
        return tuple(g // oc[d] for d, g in enumerate(group))

    def groups_in_object(self, obj: Sequence[int]) -> int:
        """How many groups contribute to the objects at non-spatial index ``obj``."""
        total = 1
        oc = self.object_chunks
        for d, o in enumerate(obj):
            if d == 0 and self.appendable:
                total *= oc[0]
            else:
                total *= min(oc[d], self.chunk_count(d) - o * oc[d])
        return total

    def object_tiles(self) -> tuple[int, int]:
        """Objects along y and x."""
        return self.object_count(self.ndim - 2), self.object_count(self.ndim - 1)

    def chunk_in_object(self, chunk: Sequence[int]) -> int:
        """C-order index of ``chunk`` (full chunk index) inside its object's chunk grid (the shard index slot)."""
        index = 0
        for c, n in zip(chunk, self.object_chunks, strict=True):
            index = index * n + c % n
        return index

    @property
    def chunks_per_object(self) -> int:
        return math.prod(self.object_chunks)

    # -- rows of objects along dimension 0 (what the metadata may claim) -----------------------------------------

    @property
    def row_extent(self) -> int:
        """Indices of dimension 0 per object row."""
        return self.chunks[0] * self.object_chunks[0]

    @property
    def objects_per_row(self) -> int:
        return math.prod(self.object_count(d) for d in range(1, self.ndim))

    def outer_size(self, frames: int) -> int:
        """Indices of dimension 0 that ``frames`` frames reach (a started index counts whole)."""
        return -(-frames // self._frames_per_outer)

    def shape_with_outer(self, outer: int) -> tuple[int, ...]:
        """The array shape with dimension 0 set to ``outer`` (clipped to a fixed size)."""
        if not self.appendable:
            outer = min(outer, self.shape[0])
        return (outer, *self.shape[1:])


def build_layout(
    names: Sequence[str],
    sizes: Sequence[int],
    chunks: Sequence[int],
    shards: Sequence[int | None] | None,
) -> tuple[ArrayLayout, list[Clamp]]:
    """The layout of ``sizes``/``chunks``/``shards`` (None: unsharded), clamped to fit, and what was clamped."""
    clamps: list[Clamp] = []
    used_chunks = list(chunks)
    for d, (name, size, chunk) in enumerate(zip(names, sizes, chunks, strict=True)):
        if size > 0 and chunk > size:
            used_chunks[d] = size
            clamps.append(Clamp(name, "chunk_size_px", chunk, size))
    used_shards: tuple[int, ...] | None = None
    if shards is not None:
        per_dim = [1 if s is None else s for s in shards]
        for d, (name, size, shard) in enumerate(zip(names, sizes, per_dim, strict=True)):
            n_chunks = -(-size // used_chunks[d]) if size > 0 else None
            if n_chunks is not None and shard > n_chunks:
                per_dim[d] = n_chunks
                clamps.append(Clamp(name, "shard_size_chunks", shard, n_chunks))
        used_shards = tuple(per_dim)
    layout = ArrayLayout(shape=tuple(sizes), chunks=tuple(used_chunks), shard_chunks=used_shards)
    return layout, clamps
