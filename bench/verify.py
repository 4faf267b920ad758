"""Read a benchmark store back with zarr-python (the reference reader), in its own process, and compare every value.

Usage:  .venv/bin/python bench/verify.py STORE ARRAY_PATH FRAMES_NPY N
Prints ``ok`` or what differs, and exits non-zero on a difference. Frame ``k`` must equal ``frames[k % len(frames)]``.
"""

from __future__ import annotations

import sys

import numpy as np


def verify(store: str, array_path: str, frames_file: str, n: int) -> str:
    import zarr

    frames = np.load(frames_file)
    array = zarr.open_array(store, path=array_path, mode="r")
    expected_shape = (n, *frames.shape[1:])
    if array.shape != expected_shape:
        return f"shape {array.shape}, expected {expected_shape}"
    step = max(1, array.chunks[0])
    for start in range(0, n, step):
        block = array[start : start + step]
        for i, got in enumerate(block):
            if not np.array_equal(got, frames[(start + i) % len(frames)]):
                return f"frame {start + i} differs"
    return "ok"


def main() -> None:
    store, array_path, frames_file, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    outcome = verify(store, array_path, frames_file, n)
    print(outcome)
    sys.exit(0 if outcome == "ok" else 1)


if __name__ == "__main__":
    main()
