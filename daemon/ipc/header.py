"""The FRAME header: what travels in front of every pixel buffer on the frame stream.

Design notes:
- Binary, little-endian, fixed part then variable part, so encoding and decoding cost O(1) Python calls::

      prefix (wire.PREFIX: b"AQ", version, kind=FRAME)
      seq u64 | frame_id u64 | host_time_ns i64 | device_timestamp_ns u64 | flags u32
      | present u8 (bit 0: device timestamp given) | ndim u8 | len(dtype) u8 | len(run_id) u8 | len(key) u16
      shape: ndim x u64
      dtype (numpy ``dtype.str``, ASCII, e.g. ``<u2``) | run_id (UTF-8) | key (UTF-8)

- ``seq`` numbers the frames the sender put on one worker link: 0, 1, 2, ... without holes (frames dropped
  before sending never get one), so a worker sees a transit loss as a jump. ``frame_id`` is the camera's counter.
- ``dtype.str`` carries the byte order, so a buffer is self-describing. Only numeric dtypes (bool, signed and
  unsigned integers, floats, complex) are accepted; frames are 2-D ``(y, x)`` or 3-D ``(y, x, c)`` as in
  :mod:`daemon.ipc.frame`.
- Decoding never trusts the bytes: any inconsistency is a :class:`~daemon.errors.ProtocolError` naming the field.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from daemon.errors import ConfigError, ProtocolError
from daemon.ipc.checks import check_int, check_text
from daemon.ipc.frame import Frame, FrameFlags
from daemon.ipc.wire import PREFIX, Buffer, MessageKind, encode_prefix, open_message

_FIXED = struct.Struct("<QQqQIBBBBH")
_SEQ = struct.Struct("<Q")  # the first field of _FIXED
_HEAD = PREFIX.size + _FIXED.size
_HAS_DEVICE_TIMESTAMP = 1
_U64 = 1 << 64
_I64 = 1 << 63
NUMERIC_KINDS = "biufc"
FRAME_NDIMS = (2, 3)
_SHAPES = {ndim: struct.Struct(f"<{ndim}Q") for ndim in FRAME_NDIMS}


@lru_cache(maxsize=64)
def parse_dtype(spec: str) -> np.dtype[Any]:
    """The numpy dtype named by ``spec`` (``dtype.str`` form), refusing anything but plain numeric types."""
    try:
        dtype = np.dtype(spec)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"dtype {spec!r} is not a numpy dtype.") from exc
    _check_dtype(dtype)
    return dtype


@lru_cache(maxsize=64)
def _flags(value: int) -> FrameFlags:
    return FrameFlags(value)


def _check_dtype(dtype: np.dtype[Any]) -> None:
    if dtype.kind not in NUMERIC_KINDS or dtype.fields is not None or dtype.subdtype is not None:
        raise ConfigError(
            f"dtype must be a plain numeric type (bool, int, uint, float or complex). Got {dtype!r} instead."
        )


@dataclass(frozen=True, slots=True)
class FrameHeader:
    """Identity, timing and layout of one frame on the wire."""

    run_id: str
    key: str
    seq: int
    frame_id: int
    host_time_ns: int
    dtype: np.dtype[Any]
    shape: tuple[int, ...]
    device_timestamp_ns: int | None = None
    flags: FrameFlags = FrameFlags.NONE

    def __post_init__(self) -> None:
        check_text("run_id", self.run_id, 1, 255)
        check_text("key", self.key, 0, 0xFFFF)
        check_int("seq", self.seq, 0, _U64)
        check_int("frame_id", self.frame_id, 0, _U64)
        check_int("host_time_ns", self.host_time_ns, -_I64, _I64)
        if self.device_timestamp_ns is not None:
            check_int("device_timestamp_ns", self.device_timestamp_ns, 0, _U64)
        check_int("flags", int(self.flags), 0, 1 << 32)
        if not isinstance(self.dtype, np.dtype):
            raise ConfigError(f"dtype must be a numpy dtype. Got {self.dtype!r} instead.")
        _check_dtype(self.dtype)
        if not isinstance(self.shape, tuple) or len(self.shape) not in FRAME_NDIMS:
            raise ConfigError(f"shape must be a tuple of {FRAME_NDIMS} dimensions. Got {self.shape!r} instead.")
        for size in self.shape:
            check_int("shape", size, 1, _I64)

    @property
    def nbytes(self) -> int:
        """Bytes of the pixel buffer this header describes."""
        return math.prod(self.shape) * self.dtype.itemsize

    @classmethod
    def for_frame(cls, frame: Frame, *, run_id: str, key: str, seq: int) -> FrameHeader:
        """The header of ``frame`` as the ``seq``-th frame of a link."""
        pixels = frame.pixels
        return cls(
            run_id=run_id,
            key=key,
            seq=seq,
            frame_id=frame.frame_id,
            host_time_ns=frame.host_time_ns,
            dtype=pixels.dtype,
            shape=tuple(pixels.shape),
            device_timestamp_ns=frame.device_timestamp_ns,
            flags=frame.flags,
        )

    def encode(self) -> bytes:
        """The first part of a FRAME message (prefix included)."""
        dtype = self.dtype.str.encode("ascii")
        run_id = self.run_id.encode()
        key = self.key.encode()
        has_ts = self.device_timestamp_ns is not None
        fixed = _FIXED.pack(
            self.seq,
            self.frame_id,
            self.host_time_ns,
            self.device_timestamp_ns if self.device_timestamp_ns is not None else 0,
            int(self.flags),
            _HAS_DEVICE_TIMESTAMP if has_ts else 0,
            len(self.shape),
            len(dtype),
            len(run_id),
            len(key),
        )
        shape = _SHAPES[len(self.shape)].pack(*self.shape)
        return b"".join((encode_prefix(MessageKind.FRAME), fixed, shape, dtype, run_id, key))

    @staticmethod
    def with_seq(encoded: bytes, seq: int) -> bytes:
        """``encoded`` (from :meth:`encode`) with its sequence number replaced: the sender numbers frames as it
        sends them without building and validating a new header (seq sits at a fixed offset)."""
        check_int("seq", seq, 0, _U64)
        patched = bytearray(encoded)
        _SEQ.pack_into(patched, PREFIX.size, seq)
        return bytes(patched)

    @classmethod
    def decode(cls, part: Buffer) -> FrameHeader:
        """Parse the first part of a FRAME message; any inconsistency raises ProtocolError."""
        open_message(part, MessageKind.FRAME)
        if len(part) < _HEAD:
            raise ProtocolError(f"frame header is {len(part)} bytes; its fixed part alone is {_HEAD} bytes.")
        seq, frame_id, host_ns, device_ns, flags, present, ndim, n_dtype, n_run, n_key = _FIXED.unpack_from(
            part, PREFIX.size
        )
        shape_struct = _SHAPES.get(ndim)
        if shape_struct is None:
            raise ProtocolError(f"frame header ndim must be one of {FRAME_NDIMS}. Got {ndim} instead.")
        expected = _HEAD + 8 * ndim + n_dtype + n_run + n_key
        if len(part) != expected:
            raise ProtocolError(f"frame header is {len(part)} bytes; its length fields say {expected} bytes.")
        if present & ~_HAS_DEVICE_TIMESTAMP:
            raise ProtocolError(f"frame header presence bits must be 0 or 1. Got {present} instead.")
        shape = shape_struct.unpack_from(part, _HEAD)
        at = _HEAD + 8 * ndim
        raw = bytes(part[at:])
        try:
            dtype = parse_dtype(raw[:n_dtype].decode("ascii"))
            return cls(
                run_id=raw[n_dtype : n_dtype + n_run].decode(),
                key=raw[n_dtype + n_run :].decode(),
                seq=seq,
                frame_id=frame_id,
                host_time_ns=host_ns,
                dtype=dtype,
                shape=tuple(shape),
                device_timestamp_ns=device_ns if present else None,
                flags=_flags(flags),
            )
        except (ConfigError, UnicodeDecodeError) as exc:
            raise ProtocolError(f"frame header is invalid: {exc}") from exc
