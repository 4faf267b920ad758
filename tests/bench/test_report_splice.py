"""``bench/run.py --results FILE`` replaces its own report in FILE and keeps what was written around it by hand."""

from __future__ import annotations

from bench.report import REPORT_BEGIN, REPORT_END, splice

FIRST = "# Storage engine benchmark\n\n## Throughput\n\n| case | acqd |\n|---|---|\n| 512-none | 1301 |\n"
SECOND = "# Storage engine benchmark\n\n## Throughput\n\n| case | acqd |\n|---|---|\n| 512-none | 1497 |\n"
NOTES = "## Direct writes in pieces (session 16)\n\nWritten by hand: 512-none 1103 -> 1497 MB/s.\n"


def test_a_new_file_holds_the_report_between_the_markers() -> None:
    text = splice(None, FIRST)
    assert text == f"{REPORT_BEGIN}\n{FIRST}{REPORT_END}\n"


def test_a_new_report_replaces_the_old_one_and_keeps_the_notes_around_it() -> None:
    preface = "Read the ratios, not the absolutes.\n\n"
    before = preface + splice(None, FIRST) + "\n" + NOTES
    after = splice(before, SECOND)
    assert after == preface + splice(None, SECOND) + "\n" + NOTES
    assert "1301" not in after
    assert after.count(REPORT_BEGIN) == after.count(REPORT_END) == 1


def test_replacing_twice_gives_the_same_file_as_replacing_once() -> None:
    base = splice(None, FIRST) + "\n" + NOTES
    assert splice(splice(base, SECOND), SECOND) == splice(base, SECOND)


def test_a_file_without_markers_keeps_all_of_its_text_after_the_report() -> None:
    old = "# Results kept by hand\n\n" + NOTES
    text = splice(old, SECOND)
    assert text.startswith(REPORT_BEGIN)
    assert text.endswith(old)
    assert splice(text, FIRST).endswith(old)  # and from then on only the report between the markers changes
