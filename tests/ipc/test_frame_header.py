"""The FRAME header: every numeric dtype, 2-D and 3-D shapes, flags and times survive the wire; bad bytes do not."""

from __future__ import annotations

import struct
from dataclasses import replace

import numpy as np
import pytest

from daemon.errors import ConfigError, ProtocolError
from daemon.ipc.frame import FrameFlags
from daemon.ipc.header import FrameHeader
from daemon.ipc.wire import MAGIC, PREFIX, PROTOCOL_VERSION, MessageKind, encode_prefix

from .stream_helpers import make_frame

NUMERIC_DTYPES = [
    "|b1",
    "|i1",
    "<i2",
    "<i4",
    "<i8",
    "|u1",
    "<u2",
    "<u4",
    "<u8",
    "<f2",
    "<f4",
    "<f8",
    "<c8",
    "<c16",
    ">u2",
    ">i4",
    ">f8",
]


def header(**changes: object) -> FrameHeader:
    base = FrameHeader(
        run_id="run-1",
        key="sample/brightfield",
        seq=7,
        frame_id=1234,
        host_time_ns=1_700_000_000_000_000_000,
        dtype=np.dtype("<u2"),
        shape=(2048, 2048),
        device_timestamp_ns=99,
        flags=FrameFlags.AFTER_GAP,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


@pytest.mark.parametrize("dtype", NUMERIC_DTYPES)
@pytest.mark.parametrize("shape", [(3, 5), (480, 640, 3), (1, 1)])
def test_round_trip_every_dtype_and_shape(dtype: str, shape: tuple[int, ...]) -> None:
    original = header(dtype=np.dtype(dtype), shape=shape)
    decoded = FrameHeader.decode(original.encode())
    assert decoded == original
    assert decoded.dtype.str == np.dtype(dtype).str  # byte order survives
    assert decoded.nbytes == int(np.prod(shape)) * np.dtype(dtype).itemsize


@pytest.mark.parametrize(
    "flags",
    [FrameFlags.NONE, FrameFlags.INCOMPLETE, FrameFlags.AFTER_GAP, FrameFlags.INCOMPLETE | FrameFlags.AFTER_GAP],
)
@pytest.mark.parametrize("device_timestamp_ns", [None, 0, 2**64 - 1])
def test_round_trip_flags_and_times(flags: FrameFlags, device_timestamp_ns: int | None) -> None:
    original = header(flags=flags, device_timestamp_ns=device_timestamp_ns, host_time_ns=-5, seq=2**64 - 1)
    decoded = FrameHeader.decode(original.encode())
    assert decoded == original
    assert decoded.flags == flags
    assert decoded.device_timestamp_ns == device_timestamp_ns


def test_round_trip_keys_and_run_ids() -> None:
    for key, run_id in [("", "r"), ("é/ü/漢字", "run-ü"), ("k" * 0xFFFF, "r" * 255)]:
        original = header(key=key, run_id=run_id)
        assert FrameHeader.decode(original.encode()) == original


def test_for_frame_copies_identity_and_layout() -> None:
    frame = make_frame(42, shape=(4, 6, 3), dtype=np.uint8, flags=FrameFlags.INCOMPLETE)
    h = FrameHeader.for_frame(frame, run_id="r", key="k", seq=3)
    assert (h.frame_id, h.host_time_ns, h.device_timestamp_ns, h.flags) == (42, 1_000_042, 420, FrameFlags.INCOMPLETE)
    assert (h.dtype, h.shape, h.seq, h.nbytes) == (np.dtype(np.uint8), (4, 6, 3), 3, frame.nbytes)


def test_other_protocol_version_is_refused_with_both_versions_named() -> None:
    encoded = header().encode()
    other = PREFIX.pack(MAGIC, PROTOCOL_VERSION + 1, MessageKind.FRAME) + encoded[PREFIX.size :]
    with pytest.raises(ProtocolError, match=rf"version {PROTOCOL_VERSION + 1} is not supported.*{PROTOCOL_VERSION}"):
        FrameHeader.decode(other)


def corruptions() -> list[tuple[str, bytes, str]]:
    good = header().encode()
    fixed_end = PREFIX.size + struct.calcsize("<QQqQIBBBBH")
    ndim_at = PREFIX.size + struct.calcsize("<QQqQIB")
    return [
        ("empty", b"", "starts with 4 bytes"),
        ("bad magic", b"XX" + good[2:], "magic"),
        ("not a frame", encode_prefix(MessageKind.HEARTBEAT) + good[4:], "expected a FRAME"),
        ("unknown kind", good[:3] + bytes([200]) + good[4:], "kind must be one of"),
        ("truncated fixed part", good[: fixed_end - 1], "fixed part"),
        ("truncated tail", good[:-1], "length fields"),
        ("trailing bytes", good + b"\0", "length fields"),
        ("presence bits", good[: ndim_at - 1] + bytes([2]) + good[ndim_at:], "presence bits"),
        ("ndim 0", good[:ndim_at] + bytes([0]) + good[ndim_at + 1 :], r"ndim must be one of \(2, 3\). Got 0"),
        ("ndim 4", good[:ndim_at] + bytes([4]) + good[ndim_at + 1 :], r"ndim must be one of \(2, 3\). Got 4"),
        ("object dtype", good.replace(b"<u2", b"|O8"), "dtype"),
        ("not a dtype", good.replace(b"<u2", b"zzz"), "dtype"),
        ("run id not utf-8", good.replace(b"run-1", b"run-\xff"), "invalid"),
        ("zero dimension", good.replace(struct.pack("<Q", 2048), struct.pack("<Q", 0), 1), "shape"),
    ]


@pytest.mark.parametrize(("name", "data", "message"), corruptions(), ids=[c[0] for c in corruptions()])
def test_corrupt_header_raises_protocol_error(name: str, data: bytes, message: str) -> None:
    with pytest.raises(ProtocolError, match=message):
        FrameHeader.decode(data)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"run_id": ""}, "run_id"),
        ({"key": "k" * 0x10000}, "key"),
        ({"seq": -1}, "seq"),
        ({"frame_id": 2**64}, "frame_id"),
        ({"host_time_ns": 2**63}, "host_time_ns"),
        ({"device_timestamp_ns": -1}, "device_timestamp_ns"),
        ({"dtype": np.dtype("U4")}, "dtype"),
        ({"dtype": np.dtype([("a", "<u2")])}, "dtype"),
        ({"shape": (5,)}, "shape"),
        ({"shape": (2, 2, 2, 2)}, "shape"),
        ({"shape": (4, 0)}, "shape"),
    ],
)
def test_invalid_values_name_the_field(changes: dict[str, object], field: str) -> None:
    with pytest.raises(ConfigError, match=rf"^{field} must be .* Got .* instead"):
        header(**changes)
