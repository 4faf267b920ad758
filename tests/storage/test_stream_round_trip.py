"""Every value appended is what zarr-python reads back: dtypes, codecs, layouts, ragged ends, batches."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from daemon.storage import CompressionSettings
from tests.storage.support import (
    ALL_DTYPES,
    dims,
    expected_array,
    final_shape,
    open_array,
    random_frames,
    read,
    settings,
    write,
)

# (version, sharded): the three on-disk forms
FORMS = [pytest.param(2, False, id="v2"), pytest.param(3, False, id="v3"), pytest.param(3, True, id="v3-sharded")]

SPEC_3D = [("t", "time", 0, 4), ("y", "space", 30, 16), ("x", "space", 45, 16)]


def shards_for(spec: list[tuple[str, str, int, int]], sharded: bool) -> list[int | None] | None:
    return [2] * len(spec) if sharded else None


@pytest.mark.parametrize(("version", "sharded"), FORMS)
@pytest.mark.parametrize("dtype", ALL_DTYPES)
def test_every_dtype_round_trips(tmp_path: Path, version: int, sharded: bool, dtype: str) -> None:
    frames = random_frames(11, 30, 45, dtype)
    path = tmp_path / "s.zarr"
    s = settings(
        path,
        dims(SPEC_3D, shards_for(SPEC_3D, sharded)),
        dtype=dtype,
        version=version,
        compression=CompressionSettings("blosc-lz4", 1, "byte"),
    )
    write(s, frames)
    data = read(path, "0")
    assert data.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(data, expected_array(frames, final_shape(SPEC_3D, 11)))


SPEC_4D = [("t", "time", 0, 3), ("z", "space", 5, 2), ("y", "space", 20, 8), ("x", "space", 24, 16)]
COMPRESSIONS = [pytest.param(None, id="raw"), pytest.param(CompressionSettings("zstd", 3), id="zstd-3")]
COMPRESSIONS += [
    pytest.param(CompressionSettings(codec, level, shuffle), id=f"{codec}-{level}-{shuffle}")
    for codec in ("blosc-lz4", "blosc-zstd", "blosc-blosclz", "blosc-zlib")
    for level, shuffle in ((1, "none"), (5, "byte"), (9, "bit"))
]


@pytest.mark.parametrize(("version", "sharded"), FORMS)
@pytest.mark.parametrize("compression", COMPRESSIONS)
def test_every_codec_round_trips(
    tmp_path: Path, version: int, sharded: bool, compression: CompressionSettings | None
) -> None:
    frames = random_frames(5 * 7 + 2, 20, 24, "uint16", seed=1)  # 7 full outer indices, then 2 frames of the 8th
    path = tmp_path / "s.zarr"
    s = settings(path, dims(SPEC_4D, shards_for(SPEC_4D, sharded)), version=version, compression=compression)
    write(s, frames)
    np.testing.assert_array_equal(read(path, "0"), expected_array(frames, final_shape(SPEC_4D, len(frames))))


LAYOUTS = {
    "3d-aligned": [("t", "time", 0, 2), ("y", "space", 32, 16), ("x", "space", 32, 8)],
    "3d-ragged-xy": [("t", "time", 0, 3), ("y", "space", 17, 5), ("x", "space", 23, 7)],
    "4d-channel": [("c", "channel", 0, 1), ("z", "space", 7, 3), ("y", "space", 12, 12), ("x", "space", 10, 4)],
    "4d-outer-chunk-2": [("t", "time", 0, 2), ("c", "channel", 3, 2), ("y", "space", 9, 4), ("x", "space", 11, 4)],
    "5d": [("t", "time", 0, 2), ("c", "channel", 2, 1), ("z", "space", 5, 3), ("y", "space", 13, 8),
           ("x", "space", 9, 4)],
    "5d-t-chunk-1": [("t", "time", 0, 1), ("c", "channel", 3, 2), ("z", "space", 4, 4), ("y", "space", 6, 6),
                     ("x", "space", 7, 3)],
    "5d-fixed-first": [("t", "time", 3, 2), ("c", "channel", 2, 2), ("z", "space", 3, 2), ("y", "space", 8, 4),
                       ("x", "space", 8, 8)],
}  # fmt: skip


@pytest.mark.parametrize(("version", "sharded"), FORMS)
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("n_frames", [1, 13, 40])
def test_layouts_round_trip_with_any_end(
    tmp_path: Path, version: int, sharded: bool, layout: str, n_frames: int
) -> None:
    spec = LAYOUTS[layout]
    per_outer = int(np.prod([size for _, _, size, _ in spec[1:-2]], dtype=np.int64))
    if spec[0][2]:  # a fixed first dimension holds a bounded number of frames
        n_frames = min(n_frames, spec[0][2] * per_outer)
    height, width = spec[-2][2], spec[-1][2]
    frames = random_frames(n_frames, height, width, "int32", seed=n_frames)
    path = tmp_path / "s.zarr"
    s = settings(
        path,
        dims(spec, shards_for(spec, sharded)),
        dtype="int32",
        version=version,
        compression=CompressionSettings("blosc-zstd", 1, "byte"),
    )
    stream = write(s, frames)
    assert stream.frames_appended() == n_frames
    assert stream.frames_stored() == n_frames
    np.testing.assert_array_equal(read(path, "0"), expected_array(frames, final_shape(spec, n_frames)))


@pytest.mark.parametrize(("version", "sharded"), FORMS)
@pytest.mark.parametrize("batch", [1, 4, 7, 50])
def test_batches_equal_single_frames(tmp_path: Path, version: int, sharded: bool, batch: int) -> None:
    spec = LAYOUTS["5d"]
    frames = random_frames(50, 13, 9, "uint8", seed=3)
    path = tmp_path / "s.zarr"
    write(settings(path, dims(spec, shards_for(spec, sharded)), dtype="uint8", version=version), frames, batch=batch)
    np.testing.assert_array_equal(read(path, "0"), expected_array(frames, final_shape(spec, 50)))


def test_a_batch_may_carry_its_non_spatial_shape(tmp_path: Path) -> None:
    spec = LAYOUTS["5d"]  # 2 channels x 5 z per time point
    frames = random_frames(30, 13, 9, "uint16", seed=4)
    path = tmp_path / "s.zarr"
    stream_settings = settings(path, dims(spec))
    from daemon.storage import ZarrStream

    with ZarrStream(stream_settings) as stream:
        stream.append(frames.reshape(3, 2, 5, 13, 9))
    np.testing.assert_array_equal(read(path, "0"), frames.reshape(3, 2, 5, 13, 9))


def test_a_fixed_array_not_filled_keeps_its_shape_with_fill_values(tmp_path: Path) -> None:
    spec = [("z", "space", 10, 4), ("y", "space", 8, 8), ("x", "space", 8, 8)]
    frames = random_frames(6, 8, 8, "uint16")
    path = tmp_path / "s.zarr"
    write(settings(path, dims(spec)), frames)
    data = read(path, "0")
    assert data.shape == (10, 8, 8)
    np.testing.assert_array_equal(data, expected_array(frames, (10, 8, 8)))


@pytest.mark.parametrize(("version", "sharded"), FORMS)
def test_an_empty_acquisition_is_a_valid_empty_array(tmp_path: Path, version: int, sharded: bool) -> None:
    path = tmp_path / "s.zarr"
    write(
        settings(path, dims(SPEC_3D, shards_for(SPEC_3D, sharded)), version=version), random_frames(0, 30, 45, "uint16")
    )
    array = open_array(path, "0")
    assert array.shape == (0, 30, 45)


def test_non_contiguous_frames_are_accepted(tmp_path: Path) -> None:
    frames = random_frames(6, 45, 30, "uint16").transpose(0, 2, 1)  # views with strides
    path = tmp_path / "s.zarr"
    write(settings(path, dims(SPEC_3D)), frames)
    np.testing.assert_array_equal(read(path, "0"), frames)
