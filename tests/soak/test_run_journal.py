"""The run journal: an entry per run, written atomically, closed with the outcome; entries left ``running`` by a
dead daemon are what a restarted daemon recovers; ended ones are pruned to the newest few."""

from __future__ import annotations

import json
import os
from pathlib import Path

from daemon.run_journal import (
    ALIVE_FILE,
    INTERRUPTED,
    RUNNING,
    Heartbeat,
    JournalEntry,
    RunJournal,
    default_state_dir,
    interrupted_at,
)

DEAD_PID = 2**22 + 12345  # above the default pid_max: never a live process


def entry(run_id: str, *, pid: int = DEAD_PID, started_at: float = 1.0) -> JournalEntry:
    return JournalEntry(run_id, "p.yaml", "/data/x.zarr", ("",), 3, started_at, pid)


def test_an_entry_is_written_private_and_closed_with_its_outcome(tmp_path: Path) -> None:
    journal = RunJournal(tmp_path)
    journal.begin(entry("r1", pid=os.getpid()))
    journal.worker("r1", 4242)
    assert (tmp_path / "runs").stat().st_mode & 0o777 == 0o700
    assert journal.path("r1").stat().st_mode & 0o777 == 0o600
    written = journal.read("r1")
    assert written is not None
    assert (written.run_id, written.state, written.worker_pid, written.keys) == ("r1", RUNNING, 4242, ("",))
    assert journal.unfinished() == []  # this process owns it: not interrupted
    journal.end("r1", "finished", {"frames_stored": 7})
    ended = journal.read("r1")
    assert ended is not None
    assert (ended.state, ended.counts, ended.worker_pid) == ("finished", {"frames_stored": 7}, 4242)
    assert ended.finished_at is not None
    assert list((tmp_path / "runs").iterdir()) == [journal.path("r1")]  # no temporary file left


def test_entries_of_a_dead_daemon_are_unfinished_until_closed(tmp_path: Path) -> None:
    journal = RunJournal(tmp_path)
    journal.begin(entry("dead"))
    journal.begin(entry("mine", pid=os.getpid()))
    assert [e.run_id for e in journal.unfinished()] == ["dead"]
    journal.end("dead", INTERRUPTED, {"frames_claimed": 3})
    assert journal.unfinished() == []


def test_an_unreadable_entry_is_skipped(tmp_path: Path) -> None:
    journal = RunJournal(tmp_path)
    journal.path("bad").write_text("{not json")
    journal.path("old").write_text(json.dumps({"format": 99}))
    journal.begin(entry("good"))
    assert [e.run_id for e in journal.entries()] == ["good"]


def test_ended_entries_are_pruned_to_the_newest(tmp_path: Path) -> None:
    journal = RunJournal(tmp_path, keep=2)
    for i in range(5):
        journal.begin(entry(f"r{i}", started_at=float(i)))
        journal.end(f"r{i}", "finished", {})
    journal.begin(entry("live", started_at=10.0))
    assert journal.prune() == 3
    assert [(e.run_id, e.state) for e in journal.entries()] == [
        ("r3", "finished"),
        ("r4", "finished"),
        ("live", RUNNING),
    ]


def test_the_state_folder_is_systemds_else_the_runtime_folder(tmp_path: Path) -> None:
    assert default_state_dir(tmp_path, {"STATE_DIRECTORY": "/var/lib/acqd:/other"}) == Path("/var/lib/acqd")
    assert default_state_dir(tmp_path, {}) == tmp_path


def test_the_heartbeat_tells_the_next_daemon_when_this_one_was_last_alive(tmp_path: Path) -> None:
    journal = RunJournal(tmp_path)
    assert journal.last_alive() is None  # no daemon beat here yet
    journal.heartbeat()
    alive = tmp_path / "runs" / ALIVE_FILE
    assert alive.read_text() == str(os.getpid())
    assert alive.stat().st_mode & 0o777 == 0o600
    os.utime(alive, (1000.0, 1000.0))
    assert RunJournal(tmp_path).last_alive() == Heartbeat(os.getpid(), 1000.0)
    journal.heartbeat()  # later beats only touch the file
    beat = RunJournal(tmp_path).last_alive()
    assert beat is not None
    assert beat.pid == os.getpid()
    assert beat.at > 1000.0
    assert [e.run_id for e in journal.entries()] == []  # the heartbeat is not an entry
    alive.unlink()
    journal.heartbeat()  # a removed file is written again, pid first
    assert alive.read_text() == str(os.getpid())


def test_an_interrupted_run_is_dated_by_its_own_daemons_last_heartbeat(tmp_path: Path) -> None:
    crashed = entry("r", pid=DEAD_PID, started_at=100.0)
    assert interrupted_at(crashed, Heartbeat(DEAD_PID, 250.5)) == 250.5
    assert interrupted_at(crashed, Heartbeat(DEAD_PID, 50.0)) == 100.0  # not before the run started
    assert interrupted_at(crashed, Heartbeat(DEAD_PID + 1, 250.5)) is None  # another daemon's beat
    assert interrupted_at(crashed, None) is None
    journal = RunJournal(tmp_path)
    journal.begin(crashed)
    assert journal.read("r").interrupted_at is None  # type: ignore[union-attr]
    journal.end("r", INTERRUPTED, {"frames_claimed": 3}, interrupted_at=250.5)
    ended = journal.read("r")
    assert ended is not None
    assert (ended.state, ended.interrupted_at) == (INTERRUPTED, 250.5)
    assert ended.finished_at is not None
    assert ended.finished_at > 250.5  # finished_at: when recovery ended
