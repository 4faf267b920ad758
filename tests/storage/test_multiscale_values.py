"""Every level of a streamed pyramid equals a whole-array numpy pyramid of the frames sent, value for value.

Covers each method, 3-, 4- and 5-dimensional layouts (time, channel, z and an appended space axis), odd sizes,
ragged ends (mid z-stack, mid channel, a fixed array left short), Zarr v2 and v3 (sharded and not), and every
data type; read back with zarr-python.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.storage.multiscale_support import CASES, Case, stream_and_compare
from tests.storage.support import ALL_DTYPES

METHODS = ["mean", "decimate", "min", "max"]
STORAGE = {
    "v2": {"version": 2},
    "v3": {"version": 3},
    "v3-sharded": {"version": 3, "sharded": True},
}


@pytest.mark.parametrize("storage", list(STORAGE))
@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("case", CASES, ids=str)
def test_every_level_equals_the_reference(tmp_path: Path, case: Case, method: str, storage: str) -> None:
    options = STORAGE[storage]
    n_levels = stream_and_compare(
        tmp_path / "s.zarr", case, method, int(options["version"]), bool(options.get("sharded")), "uint16"
    )
    assert n_levels >= 2  # every case makes a pyramid


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("dtype", ALL_DTYPES)
def test_every_data_type_keeps_its_values_on_every_level(tmp_path: Path, dtype: str, method: str) -> None:
    case = next(c for c in CASES if c.name == "tczyx")
    stream_and_compare(tmp_path / "s.zarr", case, method, 3, True, dtype)


@pytest.mark.parametrize("method", METHODS)
def test_a_single_frame_reaches_every_level(tmp_path: Path, method: str) -> None:
    case = Case("one-frame", [("t", "time", 0, 4), ("z", "space", 3, 1), ("y", "space", 9, 2), ("x", "space", 5, 2)],
                [1, 1, 1, 1], 1)  # fmt: skip
    assert stream_and_compare(tmp_path / "s.zarr", case, method, 3, False, "int16") == 4
