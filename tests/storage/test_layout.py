"""Layout math: frame -> group and slot in C order, ragged extents, objects, rows, clamping."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from daemon.storage.layout import ArrayLayout, Clamp, build_layout


def test_frames_walk_the_non_spatial_dims_in_c_order() -> None:
    layout = ArrayLayout(shape=(0, 3, 4, 8, 8), chunks=(2, 2, 3, 8, 8))
    for k, (t, c, z) in enumerate(itertools.product(range(5), range(3), range(4))):
        position = layout.frame_position(k)
        assert position.group == (t // 2, c // 2, z // 3)
        assert position.slot == (t % 2, c % 2, z % 3)


def test_a_3d_layout_has_one_non_spatial_dim() -> None:
    layout = ArrayLayout(shape=(0, 5, 7), chunks=(4, 2, 2))
    assert layout.ns == 1
    assert layout.frames_per_outer == 1
    assert layout.frame_position(9).group == (2,)
    assert layout.frame_position(9).slot == (1,)
    assert layout.tiles == (3, 4)


def test_ragged_extents_at_fixed_edges_and_full_ones_on_the_append_dim() -> None:
    layout = ArrayLayout(shape=(0, 5, 10, 10), chunks=(4, 2, 10, 10))
    assert [layout.extent(1, i) for i in range(3)] == [2, 2, 1]
    assert layout.extent(0, 1000) == 4
    assert layout.group_slots((0, 2)) == 4 * 1
    assert layout.capacity is None


def test_a_fixed_first_dim_bounds_the_frames() -> None:
    layout = ArrayLayout(shape=(3, 2, 4, 4), chunks=(2, 2, 4, 4))
    assert layout.capacity == 6
    assert layout.group_slots((1, 0)) == 1 * 2
    assert layout.shape_with_outer(10) == (3, 2, 4, 4)


@pytest.mark.parametrize(
    ("shape", "chunks", "expected"),
    [
        ((0, 8, 8), (1, 8, 8), 1),
        ((0, 8, 8), (4, 8, 8), 1),
        ((0, 3, 4, 8, 8), (1, 1, 1, 8, 8), 1),
        ((0, 3, 4, 8, 8), (2, 1, 1, 8, 8), 12),
        ((0, 3, 4, 8, 8), (1, 2, 1, 8, 8), 4),
        ((0, 3, 10, 8, 8), (1, 1, 4, 8, 8), 1),
    ],
)
def test_max_open_groups_matches_a_simulation(shape: tuple[int, ...], chunks: tuple[int, ...], expected: int) -> None:
    layout = ArrayLayout(shape=shape, chunks=chunks)
    counts: dict[tuple[int, ...], int] = {}
    most = 0
    for k in range(int(np.prod(shape[1:-2])) * 6):
        group = layout.frame_position(k).group
        counts[group] = counts.get(group, 0) + 1
        most = max(most, len(counts))
        if counts[group] == layout.group_slots(group):
            del counts[group]
    assert most == expected == layout.max_open_groups()


def test_objects_rows_and_shard_positions() -> None:
    layout = ArrayLayout(shape=(0, 5, 12, 20), chunks=(2, 2, 4, 4), shard_chunks=(3, 2, 2, 3))
    assert layout.object_shape == (6, 4, 8, 12)
    assert layout.row_extent == 6
    assert layout.object_count(1) == 2  # 3 chunks of c, 2 per shard
    assert layout.object_tiles() == (2, 2)
    assert layout.objects_per_row == 2 * 2 * 2
    assert layout.group_object((4, 2)) == (1, 1)
    assert layout.groups_in_object((0, 0)) == 3 * 2
    assert layout.groups_in_object((0, 1)) == 3 * 1  # the last c shard holds one chunk
    assert layout.chunks_per_object == 36
    assert layout.chunk_in_object((0, 0, 0, 0)) == 0
    assert layout.chunk_in_object((1, 1, 1, 2)) == ((1 * 2 + 1) * 2 + 1) * 3 + 2
    assert layout.chunk_in_object((4, 3, 3, 5)) == layout.chunk_in_object((1, 1, 1, 2))


def test_unsharded_objects_are_chunks() -> None:
    layout = ArrayLayout(shape=(0, 8, 8), chunks=(2, 4, 4))
    assert layout.object_chunks == (1, 1, 1)
    assert layout.object_shape == (2, 4, 4)
    assert layout.row_extent == 2
    assert layout.objects_per_row == 4


def test_outer_size_counts_a_started_index_whole() -> None:
    layout = ArrayLayout(shape=(0, 3, 8, 8), chunks=(1, 1, 8, 8))
    assert [layout.outer_size(n) for n in (0, 1, 3, 4, 6, 7)] == [0, 1, 1, 2, 2, 3]


def test_build_layout_clamps_chunks_and_shards_to_fixed_dims() -> None:
    layout, clamps = build_layout(["t", "c", "y", "x"], [0, 3, 10, 64], [128, 8, 4, 16], [1, 2, 8, None])
    assert layout.chunks == (128, 3, 4, 16)
    assert layout.shard_chunks == (1, 1, 3, 1)
    assert clamps == [
        Clamp("c", "chunk_size_px", 8, 3),
        Clamp("c", "shard_size_chunks", 2, 1),
        Clamp("y", "shard_size_chunks", 8, 3),
    ]


def test_build_layout_without_shards_is_unsharded() -> None:
    layout, clamps = build_layout(["t", "y", "x"], [0, 8, 8], [4, 8, 8], None)
    assert layout.shard_chunks is None
    assert clamps == []
