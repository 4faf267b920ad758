"""PFNC formats map to numpy layouts; driver bytes are copied out, padding dropped, unfilled bytes zeroed."""

from __future__ import annotations

import numpy as np
import pytest
from harvesters.util.pfnc import dict_by_names

from daemon.cameras import pixel_format
from daemon.cameras.pixel_format import SUPPORTED, by_code, by_name, copy_pixels
from daemon.errors import CameraError, ConfigError


@pytest.mark.parametrize("name", list(SUPPORTED))
def test_codes_agree_with_harvesters_pfnc_table(name: str) -> None:
    assert SUPPORTED[name].code == dict_by_names[name]
    assert by_code(dict_by_names[name]) is SUPPORTED[name]


@pytest.mark.parametrize(
    ("name", "shape", "dtype", "bits"),
    [
        ("Mono8", (3, 5), np.uint8, 8),
        ("Mono12", (3, 5), np.uint16, 12),
        ("Mono16", (3, 5), np.uint16, 16),
        ("RGB8", (3, 5, 3), np.uint8, 8),
        ("BGRa8", (3, 5, 4), np.uint8, 8),
    ],
)
def test_layouts(name: str, shape: tuple[int, ...], dtype: type, bits: int) -> None:
    fmt = by_name(name)
    assert fmt.shape(3, 5) == shape
    assert fmt.dtype == np.dtype(dtype)
    assert fmt.bits == bits


@pytest.mark.parametrize("name", ["Mono12p", "Mono12Packed", "BayerRG8", "YUV422_8", "Mono9"])
def test_unsupported_names_are_refused_with_the_supported_list(name: str) -> None:
    with pytest.raises(ConfigError, match=rf"cannot unpack pixel format '{name}'.*Supported: Mono8, Mono10"):
        by_name(name)


def test_unsupported_codes_are_refused_naming_the_format() -> None:
    with pytest.raises(CameraError, match=r"'Mono12p' \(0x010C0047\)"):
        by_code(dict_by_names["Mono12p"], name="Mono12p")


def test_copy_is_owned_and_independent_of_the_driver_buffer() -> None:
    raw = bytearray(np.arange(12, dtype="<u2").tobytes())
    out = copy_pixels(raw, by_name("Mono16"), 3, 4)
    np.testing.assert_array_equal(out, np.arange(12).reshape(3, 4))
    assert out.flags.owndata
    raw[:] = bytes(len(raw))
    assert out[2, 3] == 11


def test_copy_honours_offset_and_line_padding() -> None:
    height, width, padding, offset = 3, 4, 6, 10
    image = np.arange(height * width * 3, dtype=np.uint8).reshape(height, width, 3)
    lines = [image[y].tobytes() + b"\xee" * padding for y in range(height)]
    raw = b"\xff" * offset + b"".join(lines)[:-padding]  # the last line's padding may be cut
    out = copy_pixels(raw, by_name("RGB8"), height, width, offset=offset, padding_x=padding)
    np.testing.assert_array_equal(out, image)
    assert out.flags.c_contiguous


def test_unfilled_part_of_an_incomplete_buffer_is_zero() -> None:
    raw = np.full(6 * 4, 9, dtype=np.uint8).tobytes()
    out = copy_pixels(raw, by_name("Mono8"), 6, 4, filled=10)
    assert out.reshape(-1)[:10].tolist() == [9] * 10
    assert not out.reshape(-1)[10:].any()


def test_unfilled_with_padding_counts_padded_bytes() -> None:
    raw = np.full(3 * 6, 9, dtype=np.uint8).tobytes()
    out = copy_pixels(raw, by_name("Mono8"), 3, 4, padding_x=2, filled=7)  # one line + padding + 1 pixel
    assert out.tolist() == [[9, 9, 9, 9], [9, 0, 0, 0], [0, 0, 0, 0]]


def test_too_small_a_buffer_is_an_error_not_garbage() -> None:
    with pytest.raises(CameraError, match="too small"):
        copy_pixels(bytes(10), by_name("Mono16"), 2, 4)


def test_module_exports_the_supported_table() -> None:
    assert set(pixel_format.SUPPORTED) >= {"Mono8", "Mono10", "Mono12", "Mono14", "Mono16", "RGB8", "BGR8", "RGBa8"}
