"""The bad-profile corpus: each file in ``bad/`` ends with the exact errors it must get.

An expectation line reads ``# expect: LINE PATH: FRAGMENT`` (PATH ``-`` for a document-level error). The test
asserts the issues' lines and field paths exactly, in order, with nothing extra, and that each message contains
its fragment.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from daemon.errors import ConfigError
from daemon.profile import load_profile
from daemon.strict_yaml import DocumentError

BAD = Path(__file__).parent / "bad"
CASES = sorted(BAD.glob("*.yaml"))
_EXPECT = re.compile(r"# expect: (?P<line>\d+) (?P<path>\S+): (?P<fragment>.+)")


@dataclass(frozen=True)
class Expected:
    line: int
    path: str
    fragment: str


def expectations(case: Path) -> list[Expected]:
    found = [_EXPECT.fullmatch(line) for line in case.read_text().splitlines() if line.startswith("# expect:")]
    assert all(found), f"{case.name}: malformed expectation line"
    return [Expected(int(m["line"]), "" if m["path"] == "-" else m["path"], m["fragment"]) for m in found if m]


def test_the_corpus_covers_many_cases_each_with_expectations() -> None:
    assert len(CASES) >= 60
    assert all(expectations(case) for case in CASES)


@pytest.mark.parametrize("case", CASES, ids=lambda path: path.stem)
def test_bad_profile_gets_exactly_its_errors(case: Path, tmp_path: Path) -> None:
    with pytest.raises(DocumentError) as caught:
        load_profile(case, tmp_path / "data")
    issues = caught.value.issues
    expected = expectations(case)
    assert [(issue.line, issue.path) for issue in issues] == [(e.line, e.path) for e in expected]
    for issue, wanted in zip(issues, expected, strict=True):
        assert wanted.fragment in issue.message
        assert issue.file == str(case)


def test_the_error_lists_every_issue_as_file_line_path_message(tmp_path: Path) -> None:
    case = BAD / "many_errors_one_pass.yaml"
    with pytest.raises(ConfigError) as caught:
        load_profile(case, tmp_path)
    lines = str(caught.value).splitlines()
    assert len(lines) == len(expectations(case)) == 6
    assert lines[1] == f"{case}:8: cameras[0].dimensions[1].chunk_size_px: must be >= 1. Got 0 instead."
    assert isinstance(caught.value, ValueError)


def test_a_secret_in_a_profile_is_never_echoed(tmp_path: Path) -> None:
    with pytest.raises(DocumentError) as caught:
        load_profile(BAD / "s3_credentials_in_profile.yaml", tmp_path)
    assert "credentials are never part of a profile" in str(caught.value)
    assert "hunter2" not in str(caught.value)
