"""A pyramid writer killed with SIGKILL leaves every level claiming only frames that are on disk and correct."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import zarr

from tests.storage import writer_process
from tests.storage.multiscale_support import Spec, assert_level_equal, reference_pyramid
from tests.storage.test_crash_recovery import kill_writer_after


def spec_of(store: Path, version: int, layout: str) -> Spec:
    settings = writer_process.pyramid_settings(str(store), version, layout)
    return [(d.name, d.kind.value, d.array_size_px, d.chunk_size_px) for d in settings.arrays[0].dimensions]


@pytest.mark.slow
@pytest.mark.parametrize("layout", ["tczyx", "zyx"])
@pytest.mark.parametrize("version", [2, 3])
def test_after_sigkill_every_level_claims_only_correct_frames(tmp_path: Path, version: int, layout: str) -> None:
    store = tmp_path / "crash.zarr"
    acknowledged = kill_writer_after(store, version, min_stored=300, mode=f"forever-pyramid-{layout}")
    spec = spec_of(store, version, layout)
    group = zarr.open_group(str(store), mode="r")
    n_levels = len(list(group.array_keys()))
    claimed = [group[str(n)].shape[0] for n in range(n_levels)]
    per_outer = int(np.prod([size for _, _, size, _ in spec[1:-2]], dtype=np.int64))
    assert claimed[0] * per_outer >= acknowledged > 0  # what was acknowledged survived
    assert n_levels >= 2
    assert claimed[1] > 0  # the coarser levels were being stored too
    # the level-0 frames the claimed frames of every level were made from (frame k is writer_process.frame(k))
    outer_halved = spec[0][1] == "space"
    extent = max(c * (2**n if outer_halved else 1) for n, c in enumerate(claimed))
    frames = np.stack([writer_process.frame(k, noisy=True) for k in range(extent * per_outer)])
    for n, want in enumerate(reference_pyramid(frames, spec, "mean", n_levels)):
        got = np.asarray(group[str(n)][...])
        assert_level_equal(got, want.values[: claimed[n]], "mean", f"level {n}")
