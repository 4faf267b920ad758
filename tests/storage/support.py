"""Helpers for stream tests: settings builders, reference data, and what zarr-python reads back.

zarr-python is the oracle. Importing it sets ``numcodecs.blosc.use_threads = False`` for the process; the engine
compresses on its own worker threads (where Blosc never uses its internal threads), so reading back in the same
process does not change what is tested.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import zarr

from daemon.storage import (
    ArraySettings,
    CompressionSettings,
    Dimension,
    StreamSettings,
    ZarrStream,
)
from daemon.storage.file_store import FileStore
from daemon.storage.frame_table import FrameTables

ALL_DTYPES = ["uint8", "uint16", "uint32", "uint64", "int8", "int16", "int32", "int64", "float32", "float64"]


def dims(spec: Sequence[tuple[str, str, int, int]], shard: Sequence[int | None] | None = None) -> list[Dimension]:
    """Dimensions from ``(name, type, array_size_px, chunk_size_px)`` tuples, with optional shard sizes."""
    shards = list(shard) if shard is not None else [None] * len(spec)
    return [
        Dimension(name, kind, size, chunk, shard_size_chunks=s)
        for (name, kind, size, chunk), s in zip(spec, shards, strict=True)
    ]


def settings(
    path: Path | str,
    dimensions: Sequence[Dimension],
    *,
    dtype: str = "uint16",
    version: int = 3,
    compression: CompressionSettings | None = None,
    key: str = "",
    **stream: Any,
) -> StreamSettings:
    array = ArraySettings(output_key=key, data_type=dtype, dimensions=dimensions, compression=compression)
    return StreamSettings(store_path=str(path), version=version, arrays=[array], **stream)


def random_frames(n: int, height: int, width: int, dtype: str, seed: int = 0) -> npt.NDArray[Any]:
    """``n`` frames spanning the dtype's whole range (with runs of equal values, so codecs have work)."""
    rng = np.random.default_rng(seed)
    dt = np.dtype(dtype)
    if dt.kind == "f":
        data = rng.standard_normal((n, height, width)).astype(dt) * dt.type(1e3)
    else:
        info = np.iinfo(dt)
        data = rng.integers(info.min, info.max, size=(n, height, width), dtype=dt, endpoint=True)
    data[:, : height // 3] = data[:, :1]  # some compressible rows
    return data


def expected_array(frames: npt.NDArray[Any], shape: Sequence[int]) -> npt.NDArray[Any]:
    """What a reader should see: ``frames`` in C order over the non-spatial dims, the rest at the fill value."""
    out = np.zeros(tuple(shape), dtype=frames.dtype)
    flat = out.reshape(-1, *shape[-2:])
    flat[: len(frames)] = frames
    return out


def write(settings_: StreamSettings, frames: npt.NDArray[Any], batch: int = 1, key: str | None = None) -> ZarrStream:
    """Stream ``frames`` in batches of ``batch`` and close."""
    stream = ZarrStream(settings_)
    try:
        for start in range(0, len(frames), batch):
            chunk = frames[start : start + batch]
            stream.append(chunk[0] if batch == 1 else chunk, key=key)
    finally:
        stream.close()
    return stream


def read(path: Path, array_path: str) -> npt.NDArray[Any]:
    array = zarr.open_array(str(path), path=array_path, mode="r")
    data: npt.NDArray[Any] = np.asarray(array[...])
    return data


def open_array(path: Path, array_path: str) -> Any:
    return zarr.open_array(str(path), path=array_path, mode="r")


def final_shape(spec: Sequence[tuple[str, str, int, int]], n_frames: int) -> tuple[int, ...]:
    """The shape after ``n_frames``: an append dimension holds every started outer index."""
    sizes = [size for _, _, size, _ in spec]
    if sizes[0] == 0:
        per_outer = int(np.prod(sizes[1:-2], dtype=np.int64)) if len(sizes) > 3 else 1
        sizes[0] = -(-n_frames // per_outer)
    return tuple(sizes)


def wait_for_stored(stream: ZarrStream, n: int, timeout: float = 10) -> None:
    """Wait until ``stream`` has stored ``n`` frames (fails after ``timeout`` s)."""
    deadline = time.monotonic() + timeout
    while stream.frames_stored() < n:
        assert time.monotonic() < deadline, f"only {stream.frames_stored()} of {n} frames stored"
        time.sleep(0.01)


def write_with_table(settings_: StreamSettings, frames: Sequence[npt.NDArray[Any]], chunk_rows: int) -> None:
    """What an orphaned worker does: store ``frames`` in a local store with a per-frame table (row ``k``: frame id
    ``k``, device timestamp ``10 k``, host time ``100 k``, no flags) and close."""
    store = FileStore(settings_.store_path)
    stream = ZarrStream(settings_, store=store)
    tables = FrameTables(store, settings_.version_enum, [""], chunk_rows=chunk_rows)
    for k, frame in enumerate(frames):
        stream.append(frame)
        tables.table("").add(k, 10 * k, 100 * k, 0)
    stream.close()
    tables.stored("", stream.frames_stored())
    tables.close()
