"""Mangled bytes never escape decoding as anything but ProtocolError (deterministic fuzzing of real messages)."""

from __future__ import annotations

import random
from collections.abc import Callable

import numpy as np
import pytest

from daemon.errors import ProtocolError
from daemon.ipc.frame import FrameFlags
from daemon.ipc.header import FrameHeader
from daemon.ipc.messages import Final, Lost, Welcome, decode_control, encode_control

HEADER = FrameHeader("run", "key/a", 5, 6, 7, np.dtype("<u2"), (30, 40, 3), 8, FrameFlags.INCOMPLETE).encode()
CONTROLS = [encode_control(m) for m in (Welcome("r", {"a": [1, 2]}, 0.5, 5.0), Lost(3, 2, "x"), Final(1, 2, {}))]


def mangled(data: bytes, rng: random.Random) -> bytes:
    out = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        choice = rng.random()
        if choice < 0.6 and out:
            out[rng.randrange(len(out))] = rng.randrange(256)
        elif choice < 0.8 and out:
            del out[rng.randrange(len(out)) :]
        else:
            out.insert(rng.randrange(len(out) + 1), rng.randrange(256))
    return bytes(out)


def _decodes(decode: Callable[[bytes], object], data: bytes) -> bool:
    """True if ``data`` decodes, False on ProtocolError; anything else escapes and fails the test."""
    try:
        decode(data)
    except ProtocolError:
        return False
    return True


@pytest.mark.parametrize("seed", range(4))
def test_mangled_frame_headers_raise_only_protocol_error(seed: int) -> None:
    rng = random.Random(seed)
    outcomes = [_decodes(FrameHeader.decode, mangled(HEADER, rng)) for _ in range(2000)]
    assert outcomes.count(False) > 1000  # most mangling is caught; what decodes is a valid header by construction


@pytest.mark.parametrize("seed", range(4))
def test_mangled_control_messages_raise_only_protocol_error(seed: int) -> None:
    rng = random.Random(seed)
    outcomes = [_decodes(decode_control, mangled(rng.choice(CONTROLS), rng)) for _ in range(2000)]
    assert outcomes.count(False) > 1000
