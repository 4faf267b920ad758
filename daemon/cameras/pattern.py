"""The reference moving radial sine, shared bit for bit with the fake GenTL producer (C).

Any frame can be recomputed from its frame id, so a test can check every pixel that reaches a store.

Definition (integer-exact, so C and numpy agree on every pixel):

- ``maxval = 2**bits - 1`` (``bits`` = 8 for uint8, 16 for uint16, or the pixel format's depth, e.g. 12).
- ``lut[i] = floor((sin(2*pi*i/1024) + 1) * 0.5 * maxval + 0.5)`` for ``i`` in ``0..1023``, computed with the
  C library's ``sin`` in double precision (Python's ``math.sin`` is that function).
- ``cx = width // 2``, ``cy = height // 2``; ``r = isqrt((x - cx)**2 + (y - cy)**2)``.
- ``shift = (frame_id * 8) % 1024``; ``pixel(x, y) = lut[(r * 16 + 1024 - shift) % 1024]``.

So rings have a 64-pixel wavelength and move outwards by half a pixel per frame.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import numpy.typing as npt

LUT_SIZE = 1024
RADIUS_STEP = 16
FRAME_STEP = 8


@lru_cache(maxsize=8)
def sine_lut(bits: int) -> npt.NDArray[np.uint16]:
    """The 1024-entry sine table for ``bits``-bit pixels (1..16)."""
    if not 1 <= bits <= 16:
        raise ValueError(f"bits must be between 1 and 16. Got {bits} instead.")
    maxval = (1 << bits) - 1
    values = [math.floor((math.sin(2.0 * math.pi * i / LUT_SIZE) + 1.0) * 0.5 * maxval + 0.5) for i in range(LUT_SIZE)]
    lut = np.array(values, dtype=np.uint16)
    lut.setflags(write=False)
    return lut


@lru_cache(maxsize=8)
def ring_index(height: int, width: int) -> npt.NDArray[np.uint16]:
    """``(r * 16) % 1024`` for every pixel of a ``height`` x ``width`` frame (read-only, cached)."""
    y = np.arange(height, dtype=np.int64)[:, None] - height // 2
    x = np.arange(width, dtype=np.int64)[None, :] - width // 2
    r2 = y * y + x * x
    r = np.floor(np.sqrt(r2.astype(np.float64))).astype(np.int64)  # IEEE sqrt is exact-rounded: this is isqrt
    idx = ((r * RADIUS_STEP) % LUT_SIZE).astype(np.uint16)
    idx.setflags(write=False)
    return idx


def radial_sine(
    frame_id: int,
    height: int,
    width: int,
    dtype: npt.DTypeLike = np.uint16,
    bits: int | None = None,
    out: npt.NDArray[np.generic] | None = None,
) -> npt.NDArray[np.generic]:
    """Frame ``frame_id`` of the reference pattern; ``bits`` defaults to the dtype's width."""
    dt = np.dtype(dtype)
    if dt not in (np.dtype(np.uint8), np.dtype(np.uint16)):
        raise ValueError(f"dtype must be uint8 or uint16. Got {dt} instead.")
    depth = dt.itemsize * 8 if bits is None else bits
    if depth > dt.itemsize * 8:
        raise ValueError(f"bits must be at most {dt.itemsize * 8} for {dt}. Got {depth} instead.")
    lut = sine_lut(depth).astype(dt, copy=False)
    shift = (frame_id * FRAME_STEP) % LUT_SIZE
    idx = ring_index(height, width)
    # (idx + 1024 - shift) % 1024 without allocating a wider array
    positions = (idx + np.uint16(LUT_SIZE - shift)) & np.uint16(LUT_SIZE - 1)
    if out is None:
        return np.take(lut, positions)
    np.take(lut, positions, out=out)
    return out
