"""The CI chaos soak (~2 minutes): the harness of :mod:`tests.soak.harness` with a fixed seed; every invariant
must hold after every fault. Run a long one by hand with ``bench/soak.py --minutes N --seed S``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.fixtures.s3 import SeaweedServer
from tests.soak.faults import FAULTS
from tests.soak.harness import Soak, table

pytestmark = [pytest.mark.slow, pytest.mark.s3, pytest.mark.genicam]

SEED = 20241122
CYCLES_S = 95.0


@pytest.mark.timeout(300)
def test_every_invariant_holds_through_a_seeded_fault_schedule(
    tmp_path: Path, seaweed_factory: Callable[[], SeaweedServer], fake_cti: Path
) -> None:
    # A private S3 server: the soak SIGSTOPs it and black-holes its traffic, which must not disturb other tests.
    soak = Soak(tmp_path / "soak", seaweed_factory(), fake_cti, SEED)
    try:
        rows = soak.run(CYCLES_S)
    finally:
        soak.close()
    print(table(rows))
    assert soak.problems == [], "\n".join(soak.problems)
    faults_seen = {row.fault for row in rows}
    assert faults_seen >= {fault.name for fault in FAULTS}, f"not every fault fired: {sorted(faults_seen)}"
    assert rows[-1].fault == "sigterm"
    assert soak.daemon.starts >= 2  # the daemon_kill fault restarted it
