"""A writer run in a subprocess by the resume tests: ``python -m tests.storage.resume_writer SETTINGS_JSON``.

Streams frame ``k`` = :func:`frame` ``(k)`` into the store the settings (``stream_settings_to_json``) name, with a
per-frame table (row ``k``: frame id ``k``, device timestamp ``10 k``, host time ``100 k``; chunks of
``TABLE_ROWS`` rows), printing ``stored N`` after each batch, until it is killed (the parent SIGKILLs it: a
crash mid-stream).
"""

from __future__ import annotations

import json
import sys

import numpy as np
import numpy.typing as npt

from daemon.storage.frame_table import FrameTables
from daemon.storage.location import open_store
from daemon.storage.settings_json import stream_settings_from_json
from daemon.storage.stream import ZarrStream

HEIGHT, WIDTH = 40, 24
TABLE_ROWS = 8  # small table chunks: a crash leaves a partly filled one to read back


def frame(k: int) -> npt.NDArray[np.uint16]:
    """Frame ``k``: seeded noise, so every frame differs from every other and from the fill value."""
    return np.random.default_rng(k).integers(1, 2**16, size=(HEIGHT, WIDTH), dtype=np.uint16)


def main(argv: list[str]) -> None:
    settings = stream_settings_from_json(json.loads(argv[0]))
    store = open_store(settings.store_path)
    stream = ZarrStream(settings, store=store)
    tables = FrameTables(store, settings.version_enum, [""], chunk_rows=TABLE_ROWS, sync_interval_s=0.0)
    table = tables.table("")
    k = 0
    while True:
        for _ in range(5):
            stream.append(frame(k))
            table.add(k, 10 * k, 100 * k, 0)
            k += 1
        stored = stream.frames_stored()
        tables.stored("", stored)
        tables.sync()
        print(f"stored {stored} appended {k}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
