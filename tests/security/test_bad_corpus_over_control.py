"""The whole bad-profile corpus (``tests/profiles/bad/``) sent inline over the control socket to ONE real
``acqd serve``: ``validate`` and ``start`` of every file are refused ``invalid_profile`` with the same facts as
loading the file (each expected line, field path and message fragment), the daemon answers ``ping`` after every
request, nothing appears in the data root, and its memory and open descriptors stay flat over the corpus.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from daemon.ipc.client import Client, RemoteError
from tests.profiles.test_bad_profiles import CASES, Expected, expectations
from tests.serve.daemon_process import DaemonProcess, open_fds, rss_kib, running_daemon

pytestmark = pytest.mark.slow

INLINE = "<inline>"
RSS_SLACK_KIB = 16 * 1024
FD_SLACK = 2


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaemonProcess]:
    with running_daemon(tmp_path_factory.mktemp("corpus")) as process:
        yield process


def refusal(client: Client, command: str, text: str) -> RemoteError:
    with pytest.raises(RemoteError) as caught:
        client.call(command, {"yaml": text})
    assert client.ping()["pong"] is True
    return caught.value


def assert_same_facts(case: Path, error: RemoteError, wanted: list[Expected]) -> None:
    """Every expected issue is a line ``<inline>:LINE: PATH: ...FRAGMENT...`` of the reply, in order."""
    assert error.code == "invalid_profile", f"{case.name}: {error.code}: {error.message}"
    lines = error.message.splitlines()
    assert len(lines) == len(wanted), f"{case.name}: {error.message}"
    for line, expected in zip(lines, wanted, strict=True):
        prefix = f"{INLINE}:{expected.line}: " + (f"{expected.path}: " if expected.path else "")
        assert line.startswith(prefix), f"{case.name}: {line!r} does not start with {prefix!r}"
        assert expected.fragment in line, f"{case.name}: {expected.fragment!r} not in {line!r}"


def send_corpus(client: Client, commands: tuple[str, ...]) -> None:
    for case in CASES:
        text = case.read_text(encoding="utf-8")
        for command in commands:
            assert_same_facts(case, refusal(client, command, text), expectations(case))


def test_every_bad_profile_inline_is_refused_with_the_file_facts_and_leaves_no_trace(daemon: DaemonProcess) -> None:
    pid = daemon.proc.pid
    with daemon.client(timeout_s=10.0) as client:
        send_corpus(client, ("validate",))  # warm-up: every code path loaded, caches filled
        rss, fds = rss_kib(pid), open_fds(pid)
        for _ in range(2):
            send_corpus(client, ("validate", "start"))
        assert client.status()["runs"] == []
        grown_rss, grown_fds = rss_kib(pid) - rss, open_fds(pid) - fds
    assert list(daemon.data_root.iterdir()) == []
    assert daemon.proc.poll() is None
    assert grown_rss < RSS_SLACK_KIB, f"RSS grew by {grown_rss} KiB over {2 * len(CASES)} bad profiles"
    assert grown_fds <= FD_SLACK, f"{grown_fds} more open descriptors"
    assert not [e for e in daemon.logs() if e.get("level") in ("critical", "exception")]
    assert "Traceback" not in daemon.stderr()
