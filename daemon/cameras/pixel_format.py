"""PFNC pixel formats acqd can deliver, and the copy from a driver buffer into an owned numpy array.

Supported (little-endian, unpacked): Mono8 -> ``(y, x) uint8``; Mono10/12/14/16 -> ``(y, x) uint16`` (one pixel per
two bytes, ``bits`` significant); RGB8/BGR8 -> ``(y, x, 3) uint8``; RGBa8/BGRa8 -> ``(y, x, 4) uint8``. Channel
order is kept as the device sends it. Packed (Mono10p, Mono12p, Mono12Packed), Bayer, YUV and planar formats are
refused with a clear error: storing them would need an unpacking or demosaicing step acqd does not have.

Codes are the PFNC 32-bit values a GenTL buffer reports (``BUFFER_INFO_PIXELFORMAT``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from numpy.lib.stride_tricks import as_strided

from daemon.errors import CameraError, ConfigError


@dataclass(frozen=True, slots=True)
class PixelFormat:
    """One supported PFNC format and its numpy layout."""

    name: str
    code: int
    dtype: np.dtype[Any]
    channels: int  # 1: a (y, x) array; 3 or 4: (y, x, c)
    bits: int  # significant bits per channel

    @property
    def bytes_per_pixel(self) -> int:
        return self.dtype.itemsize * self.channels

    def shape(self, height: int, width: int) -> tuple[int, ...]:
        return (height, width) if self.channels == 1 else (height, width, self.channels)


_U8 = np.dtype("<u1")
_U16 = np.dtype("<u2")

SUPPORTED: dict[str, PixelFormat] = {
    f.name: f
    for f in (
        PixelFormat("Mono8", 0x01080001, _U8, 1, 8),
        PixelFormat("Mono10", 0x01100003, _U16, 1, 10),
        PixelFormat("Mono12", 0x01100005, _U16, 1, 12),
        PixelFormat("Mono14", 0x01100025, _U16, 1, 14),
        PixelFormat("Mono16", 0x01100007, _U16, 1, 16),
        PixelFormat("RGB8", 0x02180014, _U8, 3, 8),
        PixelFormat("BGR8", 0x02180015, _U8, 3, 8),
        PixelFormat("RGBa8", 0x02200016, _U8, 4, 8),
        PixelFormat("BGRa8", 0x02200017, _U8, 4, 8),
    )
}
_BY_CODE: dict[int, PixelFormat] = {f.code: f for f in SUPPORTED.values()}


def _refusal(what: str) -> str:
    return (
        f"acqd cannot unpack pixel format {what}: packed, Bayer, YUV and planar formats are not supported. "
        f"Supported: {', '.join(SUPPORTED)}."
    )


def by_name(name: str) -> PixelFormat:
    """The supported format called ``name``; ConfigError otherwise."""
    found = SUPPORTED.get(name)
    if found is None:
        raise ConfigError(_refusal(repr(name)))
    return found


def by_code(code: int, name: str | None = None) -> PixelFormat:
    """The supported format with PFNC ``code``; CameraError otherwise (``name`` only improves the message)."""
    found = _BY_CODE.get(code)
    if found is None:
        what = f"{name!r} (0x{code:08X})" if name else f"0x{code:08X}"
        raise CameraError(_refusal(what))
    return found


def copy_pixels(
    raw: Any,
    fmt: PixelFormat,
    height: int,
    width: int,
    offset: int = 0,
    padding_x: int = 0,
    filled: int | None = None,
    out: npt.NDArray[Any] | None = None,
) -> npt.NDArray[Any]:
    """Copy one image out of ``raw`` (a buffer the driver will reuse) into a new C-contiguous array, or into ``out``
    when it is a C-contiguous array of the image's shape and dtype (a frame slot; otherwise it is not used).

    ``offset`` is where the image starts in ``raw``, ``padding_x`` the bytes after each line, ``filled`` the bytes
    the device actually wrote (an incomplete buffer): pixels past it are zero, never stale data.
    """
    row = width * fmt.bytes_per_pixel
    stride = row + padding_x
    view = np.frombuffer(raw, dtype=np.uint8)
    needed = offset + stride * (height - 1) + row if height > 0 else offset
    if view.size < needed:
        raise CameraError(
            f"buffer of {view.size} bytes is too small for a {width}x{height} {fmt.name} image "
            f"at offset {offset} with {padding_x} bytes of line padding (needs {needed})."
        )
    image = view[offset:needed]
    shape = fmt.shape(height, width)
    if out is None or out.shape != shape or out.dtype != fmt.dtype or not out.flags.c_contiguous:
        out = np.empty(shape, dtype=fmt.dtype)  # owns its memory
    flat = out.reshape(-1).view(np.uint8)
    if padding_x:
        rows = as_strided(image, shape=(height, row), strides=(stride, 1), writeable=False)
        flat.reshape(height, row)[...] = rows
    else:
        flat[...] = image
    if filled is not None and filled < needed - offset:
        _zero_unfilled(flat, max(filled, 0), row, stride)
    return out


def _zero_unfilled(flat: npt.NDArray[np.uint8], filled: int, row: int, stride: int) -> None:
    """Zero what the device did not write, in the unpadded copy (``filled`` counts padded bytes)."""
    full_rows, rest = divmod(filled, stride)
    start = full_rows * row + min(rest, row)
    flat[start:] = 0
