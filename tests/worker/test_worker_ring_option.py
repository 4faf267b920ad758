"""The worker's frame-ring size: ``--ring-mib``, else ``ACQD_FRAME_RING_MIB``, else 32 MiB; 0 turns it off."""

from __future__ import annotations

import pytest

from daemon.errors import ConfigError
from daemon.storage.worker_options import RING_ENV, ring_mib_of


@pytest.mark.parametrize(
    ("option", "environ", "expected"),
    [(None, {}, 32), (None, {RING_ENV: "0"}, 0), (None, {RING_ENV: "128"}, 128), (16, {RING_ENV: "0"}, 16)],
)
def test_the_option_wins_over_the_environment_which_wins_over_the_default(
    option: int | None, environ: dict[str, str], expected: int
) -> None:
    assert ring_mib_of(option, environ) == expected


@pytest.mark.parametrize(("option", "environ", "shown"), [(None, {RING_ENV: "lots"}, "'lots'"), (-1, {}, "'-1'")])
def test_a_bad_size_names_the_option_the_value_and_the_range(
    option: int | None, environ: dict[str, str], shown: str
) -> None:
    with pytest.raises(
        ConfigError, match=rf"--ring-mib / {RING_ENV} must be an integer MiB from 0 to 65536\. Got {shown}"
    ):
        ring_mib_of(option, environ)
