"""Per-key stored counts become one cumulative watermark over link sequence numbers."""

from __future__ import annotations

import pytest

from daemon.errors import ConfigError
from daemon.ipc.stored_tracker import StoredTracker


def test_interleaved_keys_advance_only_over_a_contiguous_prefix() -> None:
    t = StoredTracker()
    for seq, key in enumerate(["a", "b", "a", "b", "a"]):
        t.appended(key, seq)
    assert not t.stored("b", 2)  # seqs 1, 3: seq 0 still pending
    assert t.next_seq == 0
    assert t.stored("a", 1)  # seq 0 -> 0, 1 resolved
    assert t.next_seq == 2
    assert t.stored("a", 3)  # seqs 2, 4
    assert t.next_seq == 5


def test_lost_frames_are_resolved_too() -> None:
    t = StoredTracker()
    t.appended("a", 0)
    t.appended("a", 3)
    assert not t.resolve(1, 2)
    assert t.stored("a", 1)
    assert t.next_seq == 3
    t.stored("a", 2)
    assert t.next_seq == 4


@pytest.mark.parametrize(("count", "text"), [(-1, "between 0"), (3, "and 2"), (1.5, "Got 1.5")])
def test_impossible_counts_are_refused(count: object, text: str) -> None:
    t = StoredTracker()
    t.appended("a", 0)
    t.appended("a", 1)
    with pytest.raises(ConfigError, match=rf"frames_stored of key 'a' must be .*{text}"):
        t.stored("a", count)  # type: ignore[arg-type]


def test_counts_never_go_backwards() -> None:
    t = StoredTracker()
    t.appended("a", 0)
    t.stored("a", 1)
    with pytest.raises(ConfigError, match=r"between 1 \(reported before\)"):
        t.stored("a", 0)


def test_a_seq_resolved_twice_counts_once() -> None:
    t = StoredTracker()
    t.resolve(0)
    t.appended("a", 1)
    t.appended("a", 2)
    assert not t.resolve(0)
    assert t.next_seq == 1
    t.stored("a", 1)
    assert t.next_seq == 2
